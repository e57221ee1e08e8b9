"""Answers about a whole study, built from the study index (series and instances as ingested).

Counts, modalities, body parts and a short summary. Everything comes from de-identified index
fields; UIDs are never part of these answers. Each answer comes with the facts it rests on, cited
under the DICOM keywords that name them (Number of Study Related Series, ...).
"""

from __future__ import annotations

from django.db.models import Count, Q, Sum
from django.db.models.functions import Coalesce

from medical.models import Instance, Study

_FACT_TAGS = {
    "NumberOfStudyRelatedSeries": ("(0020,1206)", "Number of Study Related Series"),
    "NumberOfStudyRelatedInstances": ("(0020,1208)", "Number of Study Related Instances"),
    "NumberOfFrames": ("(0028,0008)", "Number of Frames"),
    "ModalitiesInStudy": ("(0008,0061)", "Modalities in Study"),
    "BodyPartExamined": ("(0018,0015)", "Body Part Examined"),
    "SeriesDescription": ("(0008,103E)", "Series Description"),
    "StudyDescription": ("(0008,1030)", "Study Description"),
    "Manufacturer": ("(0008,0070)", "Manufacturer"),
    "ManufacturerModelName": ("(0008,1090)", "Manufacturer's Model Name"),
}


def study_answer(study: Study, kind: str) -> tuple[str, list[dict]]:
    """(answer sentence, cited facts) for one of qa_format.study_question_kind's kinds."""
    facts = _facts(study)
    if kind == "series_count":
        keys = ["NumberOfStudyRelatedSeries"]
        answer = f"This study has {_plural(facts['series'], 'series', 'series')}."
    elif kind == "image_count":
        keys = ["NumberOfStudyRelatedInstances", "NumberOfStudyRelatedSeries"]
        answer = f"This study has {_images(facts)} in {_plural(facts['series'], 'series', 'series')}."
        if facts["frames"] > facts["instances"]:
            keys.append("NumberOfFrames")
    elif kind == "modalities":
        keys = ["ModalitiesInStudy"]
        answer = f"The modalities in this study: {_listed(facts['modalities'])}."
    elif kind == "body_parts":
        keys = ["BodyPartExamined"]
        answer = (
            f"The body parts examined: {_listed(facts['body_parts'])}."
            if facts["body_parts"]
            else "Not recorded: no series of this study records the body part examined."
        )
    else:
        keys = [
            "ModalitiesInStudy",
            "BodyPartExamined",
            "NumberOfStudyRelatedSeries",
            "NumberOfStudyRelatedInstances",
            "SeriesDescription",
            "StudyDescription",
            "Manufacturer",
            "ManufacturerModelName",
        ]
        answer = _summary(facts)
    return answer, [_fact(key, facts) for key in keys if _value(key, facts)]


def _facts(study: Study) -> dict:
    series = list(
        study.series.annotate(
            images=Count("instances"),
            frames=Coalesce(Sum("instances__number_of_frames"), 0)
            + Count("instances", filter=Q(instances__number_of_frames__isnull=True)),
        ).order_by("series_number", "pk")
    )
    instances = Instance.objects.filter(series__study=study)
    return {
        "study": study,
        "series": len(series),
        "instances": instances.count(),
        "frames": sum(item.frames for item in series),
        "modalities": sorted({item.modality for item in series if item.modality}),
        "body_parts": sorted({item.body_part_examined for item in series if item.body_part_examined}),
        "descriptions": [item.description for item in series if item.description],
        "study_description": study.description,
        "manufacturers": sorted({item.manufacturer for item in series if item.manufacturer}),
        "models": sorted({item.manufacturer_model_name for item in series if item.manufacturer_model_name}),
    }


def _value(key: str, facts: dict) -> str:
    return {
        "NumberOfStudyRelatedSeries": str(facts["series"]),
        "NumberOfStudyRelatedInstances": str(facts["instances"]),
        "NumberOfFrames": str(facts["frames"]) if facts["frames"] > facts["instances"] else "",
        "ModalitiesInStudy": "\\".join(facts["modalities"]),
        "BodyPartExamined": "\\".join(facts["body_parts"]),
        "SeriesDescription": "; ".join(facts["descriptions"]),
        "StudyDescription": facts["study_description"],
        "Manufacturer": "; ".join(facts["manufacturers"]),
        "ManufacturerModelName": "; ".join(facts["models"]),
    }[key]


def _fact(key: str, facts: dict) -> dict:
    tag, name = _FACT_TAGS[key]
    return {"tag": tag, "keyword": key, "name": name, "value": _value(key, facts), "path": "study index"}


def _summary(facts: dict) -> str:
    modalities = "/".join(facts["modalities"]) or "Imaging"
    parts = (
        f" of the {_listed([part.lower() for part in facts['body_parts']])}" if facts["body_parts"] else ""
    )
    sentences = [
        f"{modalities} study{parts}: {_plural(facts['series'], 'series', 'series')}, {_images(facts)}."
    ]
    if facts["study_description"]:
        sentences.append(f"Study description: {facts['study_description']}.")
    if facts["descriptions"]:
        sentences.append(f"Series: {'; '.join(dict.fromkeys(facts['descriptions']))}.")
    device = " ".join(filter(None, ["; ".join(facts["manufacturers"]), "; ".join(facts["models"])]))
    if device:
        sentences.append(f"Equipment: {device}.")
    return " ".join(sentences)


def _images(facts: dict) -> str:
    text = _plural(facts["instances"], "image", "images")
    if facts["frames"] > facts["instances"]:
        text += f" ({facts['frames']} frames)"
    return text


def _plural(count: int, one: str, many: str) -> str:
    return f"{count} {one if count == 1 else many}"


def _listed(values: list[str]) -> str:
    if not values:
        return "none recorded"
    return values[0] if len(values) == 1 else ", ".join(values[:-1]) + " and " + values[-1]
