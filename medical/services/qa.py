"""Grounded question answering about a study, series or instance.

1. Questions about data that de-identification removed are answered "not available" from the
   profile alone: the value is gone from the stored copy, and nothing is sent to a model.
   Questions about the pixels ("is there a fracture?") get "Suite reads the header, not the
   pixels"; questions about the whole study (counts of series and images, modalities, body parts,
   a summary) are answered from the study index, never with UIDs.
2. Retrieval ranks the attributes of the de-identified header (medical.dicom.retrieve): lexical
   matching plus embedding similarity (medical.semantic), with the attributes the profile removed
   competing too. If a removed one wins, the answer is "removed by de-identification" when the
   original carried it and "not recorded" when it did not (Instance.removed_keywords).
3. The QA default model (inference.services.default_target("qa"), set by ML engineers on the
   Models page) phrases an answer from the best few attributes (greedy, prompt-lookup
   speculative decoding, a short budget), and may choose among the candidates that retrieval
   ranks close to the best. The phrased answer is used only if it names one of those attributes,
   states its value and no number the attributes lack; otherwise the answer is the deterministic
   sentence built from the best attribute ("extractive"). Studies whose pixels may carry burned-in
   text are kept from the model until a person reviewed them, and are answered extractively.
   Every answer carries a grounding score (0 to 1): how clearly retrieval singled out its attribute.
4. The question, the answer, the attributes used and the model version are stored and trailed
   in one transaction.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache

import pydicom
from django.db import transaction

from inference.services import GenerationParams, completion_create, default_target, target_version
from medical import conf, qa_format, semantic, storage
from medical.dicom import DeidOptions, GroundingAttribute, removed_phi_requested, retrieve
from medical.dicom.grounding import names_an_attribute
from medical.models import Instance, Series, Study, StudyQuestion
from medical.services.study_facts import study_answer

logger = logging.getLogger(__name__)

MAX_QUESTION_CHARS = 500
ANSWER_MAX_TOKENS = 48
RETRIEVAL_DEPTH = 8
# The model may answer with another candidate than the best one when retrieval ranked it this close.
CHOICE_MARGIN = 0.8
# Retrieval scores at or above this are a confident match (a whole attribute name, or a close paraphrase).
CONFIDENT_SCORE = 15.0
# Below this a question shaped like a reading of the image ("is there ...?", "does it look normal?") is
# answered as one: about a phrase of one word matched, or a value word, and no more.
FINDING_SCORE = 10.0


class QuestionRejected(ValueError):
    """The question cannot be asked as given (empty, too long, or about another study's image)."""


@dataclass
class Stopwatch:
    """Where one answer's time went, in ms per stage: policy, header, retrieval (embedding is the
    question's embedding inside it), generation (the model), verification, store (row and trail).
    Measured on every answer, never stored: eval_dicom_qa reports it (`stages_ms_p50`)."""

    ms: dict[str, float] = field(default_factory=dict)

    @contextmanager
    def stage(self, name: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            self.ms[name] = self.ms.get(name, 0.0) + (time.perf_counter() - started) * 1000

    def timed(self, name: str, function):
        """`function`, its calls timed as `name` (None stays None)."""
        if function is None:
            return None

        def run(*args, **kwargs):
            with self.stage(name):
                return function(*args, **kwargs)

        return run


@dataclass(frozen=True)
class _Phrased:
    text: str | None
    model_name: str = ""
    model_version: str = ""
    adapter_name: str = ""
    generation_id: int | None = None
    note: str = ""


def study_question_ask(
    *,
    user,
    study: Study,
    question: str,
    series: Series | None = None,
    instance: Instance | None = None,
    actor=None,
) -> StudyQuestion:
    """Answer `question` about `study` (narrowed to a series or instance) for `user`.

    Raises PolicyDenied (trailed) when the user may not ask about the study, QuestionRejected
    for an unusable question. Never raises because the model is missing, busy or wrong.
    """
    from access.enforcement import check

    started = time.perf_counter()
    watch = Stopwatch()
    with watch.stage("policy"):
        decision = check(user, "ask", study, actor=actor)
    question = " ".join((question or "").split())
    if not question:
        raise QuestionRejected("Ask a question, e.g. 'What is the slice thickness?'.")
    if len(question) > MAX_QUESTION_CHARS:
        raise QuestionRejected(f"Questions are at most {MAX_QUESTION_CHARS} characters long.")
    with watch.stage("header"):
        target = _target_instance(study, series, instance)
    fields_ = _answer(user=user, actor=actor, study=study, instance=target, question=question, watch=watch)
    fields_["latency_ms"] = round((time.perf_counter() - started) * 1000, 3)
    with watch.stage("store"), transaction.atomic():
        asked = StudyQuestion.objects.create(
            study=study,
            series=target.series if target else series,
            instance=target,
            asked_by=user if getattr(user, "pk", None) else None,
            question=question,
            **fields_,
        )
        _trail(asked, actor=actor if actor is not None else user, policy=decision.policy or "")
    asked.timings_ms = {name: round(value, 2) for name, value in watch.ms.items()}
    return asked


def _target_instance(study: Study, series: Series | None, instance: Instance | None) -> Instance | None:
    if instance is not None:
        if instance.series.study_id != study.pk:
            raise QuestionRejected("That image is not part of this study.")
        return instance
    candidates = Instance.objects.filter(series__study=study).select_related("series")
    if series is not None:
        if series.study_id != study.pk:
            raise QuestionRejected("That series is not part of this study.")
        candidates = candidates.filter(series=series)
    return candidates.order_by("series__series_number", "series_id", "instance_number", "pk").first()


def _answer(*, user, actor, study: Study, instance: Instance | None, question: str, watch: Stopwatch) -> dict:
    options = _options_of(instance)
    removed = removed_phi_requested(question, options=options)
    if removed:
        return _removed_answer(removed, instance)
    if qa_format.asks_about_pixels(question):
        return _pixel_answer()
    kind = qa_format.study_question_kind(question)
    if kind and instance is not None:
        with watch.stage("header"):
            dataset = _header(instance.deidentified_file, instance.deidentified_sha256)
        if names_an_attribute(question, dataset):
            kind = None  # "how many images were in this acquisition?" is Images in Acquisition
    if kind:
        answer, facts = study_answer(study, kind)
        return _fields(
            answer, StudyQuestion.Grounding.ANSWERED, attributes=facts, note="from the study index", score=1.0
        )
    if instance is None:
        return _fields(qa_format.NO_MATCH_SENTENCE, StudyQuestion.Grounding.NO_MATCH, score=0.0)
    with watch.stage("header"):
        dataset = _header(instance.deidentified_file, instance.deidentified_sha256)
    with watch.stage("retrieval"):
        hits = retrieve(
            question,
            dataset,
            top_k=RETRIEVAL_DEPTH,
            options=options,
            semantic=watch.timed("embedding", semantic.scorer()),
            include_removed=True,
        )
    if qa_format.shaped_like_a_finding(question) and (not hits or hits[0].score < FINDING_SCORE):
        # "Any plaque in the carotid?": it asks what the image shows, and no attribute answers it well.
        return _pixel_answer()
    if not hits:
        return _fields(qa_format.NO_MATCH_SENTENCE, StudyQuestion.Grounding.NO_MATCH, score=0.0)
    best = hits[0]
    score = grounding_score(hits)
    if best.removed:
        return _removed_answer([best.keyword], instance, score=score)
    if not best.present and best.keyword == "NumberOfFrames" and instance.has_pixel_data:
        # PS3.3 C.7.6.6: Number of Frames is recorded by multi-frame images only; without it, one frame.
        return _fields(
            qa_format.SINGLE_FRAME_SENTENCE, StudyQuestion.Grounding.ANSWERED, attributes=[best], score=score
        )
    if not best.present:
        return _fields(
            qa_format.not_recorded_sentence(best),
            StudyQuestion.Grounding.NOT_RECORDED,
            attributes=[best],
            score=score,
        )
    context = qa_format.context_attributes(hits)
    # The model may answer with the best attribute or one ranked close to it, nothing else: only
    # those go into the prompt (fewer tokens to read, and no distractor it could copy instead).
    candidates = [item for item in context if item.score >= CHOICE_MARGIN * best.score]
    # When retrieval cannot tell two attributes apart ("what scanner made this?": the model name or
    # the manufacturer), the built answer states both rather than guess.
    extractive = " ".join(qa_format.value_sentence(item) for item in candidates[:2])
    if not study.usable_by_models:
        phrased = _Phrased(
            None, note="burned-in annotation not cleared by a reviewer: answered without the model"
        )
    else:
        with watch.stage("generation"):
            phrased = _phrase(
                user=user,
                actor=actor,
                messages=qa_format.prompt_messages(question, candidates),
                max_tokens=answer_token_budget(candidates),
            )
    chosen = None
    if phrased.text is not None:
        with watch.stage("verification"):
            chosen = next(
                (item for item in candidates if qa_format.answer_is_grounded(phrased.text, item, context)),
                None,
            )
    note = phrased.note
    if phrased.text is not None and chosen is None:
        note = "the model's wording did not state the retrieved value; answered from the attribute"
    if chosen is not None and chosen is not best:
        context = [chosen, *[item for item in context if item is not chosen]]
        note = "the model chose another close candidate; its value was verified"
    return _fields(
        phrased.text.strip() if chosen is not None else extractive,
        StudyQuestion.Grounding.ANSWERED,
        phrasing=StudyQuestion.Phrasing.MODEL if chosen is not None else StudyQuestion.Phrasing.EXTRACTIVE,
        attributes=context,
        phrased=phrased,
        note=note,
        score=score,
    )


def _pixel_answer() -> dict:
    return _fields(
        qa_format.PIXEL_CONTENT_SENTENCE,
        StudyQuestion.Grounding.NO_MATCH,
        note="image-content question: Suite reads the header, not the pixels",
        score=1.0,
    )


@lru_cache(maxsize=64)
def _header(name: str, digest: str) -> pydicom.Dataset:
    """The de-identified header of an image, parsed once per process for the questions that follow
    (a clinician asks several about one study). `digest` keys it: a re-stored copy is read again.
    Retrieval only reads it."""
    return pydicom.dcmread(storage.media_path(name), stop_before_pixels=True)


def answer_token_budget(candidates: list[GroundingAttribute]) -> int:
    """Tokens enough to restate the longest candidate's sentence, and the end-of-answer token.

    An answer is one sentence that copies a value; a longer one is cut off and not used. Small
    models' tokenizers spend a token per digit and about one per two or three other characters, so
    that estimate (plus a margin) covers the sentence (tests/medical/test_qa.py checks it against
    SmolLM2's tokenizer); the budget stops a rambling model early instead of after ANSWER_MAX_TOKENS.
    """
    needed = 0
    for item in candidates:
        sentence = qa_format.value_sentence(item)
        digits = sum(character.isdigit() for character in sentence)
        needed = max(needed, digits + math.ceil((len(sentence) - digits) / 2.5) + 6)
    return max(8, min(ANSWER_MAX_TOKENS, needed))


def grounding_score(hits: list[GroundingAttribute]) -> float:
    """0 to 1: how strongly the best attribute matched, and how clearly it beat the next one."""
    if not hits or hits[0].score <= 0:
        return 0.0
    best = hits[0].score
    runner_up = next((hit.score for hit in hits[1:] if hit.keyword != hits[0].keyword), 0.0)
    margin = max(0.0, best - runner_up) / best
    return round(min(1.0, best / CONFIDENT_SCORE) * (0.5 + 0.5 * margin), 2)


def _removed_answer(keywords: list[str], instance: Instance | None, *, score: float = 1.0) -> dict:
    """ "Removed" for what the original recorded and the profile took out; "not recorded" otherwise."""
    known = None if instance is None or instance.removed_keywords is None else set(instance.removed_keywords)
    removed = [keyword for keyword in keywords if known is None or keyword in known]
    absent = [keyword for keyword in keywords if keyword not in removed]
    if removed:
        return _fields(
            answer=qa_format.removed_sentence([_dictionary_name(keyword) for keyword in removed]),
            grounding=StudyQuestion.Grounding.REMOVED,
            phrasing=StudyQuestion.Phrasing.WITHHELD,
            removed_attributes=keywords,
            score=score,
        )
    return _fields(
        answer=qa_format.never_recorded_sentence(
            [(_dictionary_name(keyword), keyword) for keyword in absent]
        ),
        grounding=StudyQuestion.Grounding.NOT_RECORDED,
        phrasing=StudyQuestion.Phrasing.WITHHELD,
        removed_attributes=keywords,
        score=score,
    )


def _fields(
    answer: str,
    grounding: str,
    phrasing: str = StudyQuestion.Phrasing.EXTRACTIVE,
    *,
    attributes: list[GroundingAttribute] = (),
    removed_attributes: list[str] = (),
    phrased: _Phrased | None = None,
    note: str = "",
    score: float | None = None,
) -> dict:
    phrased = phrased or _Phrased(None)
    return {
        "grounding_score": score,
        "answer": answer,
        "grounding": grounding,
        "phrasing": phrasing,
        "attributes": [_attribute_dict(attribute) for attribute in attributes],
        "removed_attributes": list(removed_attributes),
        "model_name": phrased.model_name,
        "model_version": phrased.model_version,
        "adapter_name": phrased.adapter_name,
        "generation_id": phrased.generation_id,
        "note": note[:300],
    }


def _attribute_dict(attribute: GroundingAttribute | dict) -> dict:
    if isinstance(attribute, dict):
        return attribute
    return {
        "tag": attribute.tag,
        "keyword": attribute.keyword,
        "name": attribute.name,
        "value": attribute.value,
        "path": attribute.path,
    }


def _phrase(*, user, actor, messages: list[dict], max_tokens: int = ANSWER_MAX_TOKENS) -> _Phrased:
    target = qa_target()
    if target is None:
        return _Phrased(
            None,
            note="no QA model is set (Models page, default for question answering): answered from the attribute",
        )
    version = model_version(target)
    # Prompt lookup drafts the answer's value from the header lines in the prompt. Three tokens per
    # round: on a CPU, verifying k drafted tokens in one batch costs nearly k one-token steps, so
    # longer drafts lose (docs/benchmarks.md, bench_inference's prompt-lookup sweep: best at 3).
    params = GenerationParams(
        max_tokens=max_tokens,
        temperature=0.0,
        stop=["\n"],
        speculative="prompt_lookup",
        num_speculative_tokens=3,
    )
    try:
        completion = completion_create(
            user=user, target=target, prompt=messages, params=params, endpoint="medical.qa", actor=actor
        )
    except Exception as exc:  # PolicyDenied, Overloaded, engine errors: the clinician still gets the value
        logger.warning("medical QA answered without the model: %s", exc)
        return _Phrased(
            None,
            model_name=target.model.name,
            model_version=version,
            note=f"the model could not answer ({type(exc).__name__}): answered from the attribute",
        )
    if completion.result.finish_reason == "length":  # cut off mid-sentence: not an answer to show
        return _Phrased(
            None,
            model_name=target.model.name,
            model_version=version,
            adapter_name=target.adapter.name if target.adapter else "",
            generation_id=completion.generation_id,
            note="the model's answer ran past one sentence: answered from the attribute",
        )
    return _Phrased(
        completion.result.text,
        model_name=target.model.name,
        model_version=version,
        adapter_name=target.adapter.name if target.adapter else "",
        generation_id=completion.generation_id,
    )


def qa_target():
    """What phrases answers: the QA default model (and adapter) ML engineers set on the Models page
    (`make run` sets SmolLM2), read per question so a change applies without a restart. None if unset."""
    return default_target("qa")


def model_version(target) -> str:
    """The fingerprint of what serves the answers (weights as stored, adapter): inference's."""
    return target_version(target)


def _options_of(instance: Instance | None) -> DeidOptions:
    """The options this instance was de-identified with (what it keeps decides what may be answered)."""
    if instance is None:
        return conf.deid_options()
    enabled = set(instance.deid_options)
    return DeidOptions(**{name: name in enabled for name in _OPTION_FIELDS})


_OPTION_FIELDS = frozenset(
    {
        "retain_longitudinal_dates",
        "retain_patient_characteristics",
        "retain_device_identity",
        "retain_institution_identity",
        "retain_uids",
        "keep_descriptors",
    }
)


def _dictionary_name(keyword: str) -> str:
    from pydicom.datadict import dictionary_description, tag_for_keyword

    tag = tag_for_keyword(keyword)
    return dictionary_description(tag) if tag is not None else keyword


def _trail(asked: StudyQuestion, *, actor, policy: str) -> None:
    from audit.sealing import sealed_texts
    from audit.services import record

    # The question and answer texts are sealed by the vault (digests stay readable and hashed).
    texts = sealed_texts(
        {"question": asked.question, "answer": asked.answer},
        action="study.ask",
        resource_type="study",
        resource_id=asked.study_id,
    )
    record(
        actor=actor,
        action="study.ask",
        resource_type="study",
        resource_id=asked.study_id,
        outcome="succeeded",
        policy=policy,
        payload={
            "question_id": asked.pk,
            "instance_id": asked.instance_id,
            **texts,
            "grounding": asked.grounding,
            "phrasing": asked.phrasing,
            "attributes": [f"{item['tag']} {item['keyword']}" for item in asked.attributes],
            "removed_attributes": asked.removed_attributes,
            "model": asked.model_name,
            "model_version": asked.model_version,
            "adapter": asked.adapter_name,
            "generation_id": asked.generation_id,
            "latency_ms": asked.latency_ms,
            "grounding_score": asked.grounding_score,
        },
    )
