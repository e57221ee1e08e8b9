"""Reads of the medical app, always scoped by the acting user through the access policy.

Department isolation answers 404, never 403, for a study the user may not see: a clinician of
another department cannot tell a study that exists from one that does not. The denial is still
written to the trail (access.enforcement.check), so an audit sees every attempt.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from django.db.models import Count, OuterRef, Prefetch, Q, QuerySet, Subquery
from django.http import Http404

from medical.models import Instance, QuarantinedFile, Series, Study, StudyQuestion, StudyUserObjectPermission

NOT_FOUND_MESSAGE = "No such study, or it is not shared with you."


# sort key -> ordering; "received" (newest first) is the default.
STUDY_SORTS = {
    "received": ("-created_at", "-pk"),
    "oldest": ("created_at", "pk"),
    "modality": ("modalities", "-created_at", "-pk"),
    "images": ("-instance_count", "-created_at", "-pk"),
    "series": ("-series_count", "-created_at", "-pk"),
    "patient": ("patient__pseudonym", "-created_at", "-pk"),
}


@dataclass(frozen=True)
class StudyFilters:
    modality: str = ""
    # Received date (when Suite took the study in), inclusive: the study date itself is removed by
    # de-identification unless the site keeps dates, so a filter on it could never match.
    date_from: dt.date | None = None
    date_to: dt.date | None = None
    text: str = ""  # in the study or series description
    patient: str = ""  # pseudonym or its prefix, any case, e.g. anon-3f2a
    burned_in_review: str = ""
    sort: str = "received"


def studies_visible_to(user, *, filters: StudyFilters | None = None) -> QuerySet[Study]:
    """The studies `user` may view (own department, shared by name), newest first, with counts."""
    from access.querysets import restrict

    filters = filters or StudyFilters()
    studies = restrict(Study.objects.all(), user, "view").select_related("patient")
    # Conditions on series go through a subquery, so the counts below still see every series of a study.
    if filters.modality:
        with_modality = Series.objects.filter(modality__iexact=filters.modality.strip())
        studies = studies.filter(pk__in=with_modality.values("study"))
    if filters.text:
        text = filters.text.strip()
        described = Series.objects.filter(description__icontains=text)
        studies = studies.filter(Q(description__icontains=text) | Q(pk__in=described.values("study")))
    if filters.date_from:
        studies = studies.filter(created_at__date__gte=filters.date_from)
    if filters.date_to:
        studies = studies.filter(created_at__date__lte=filters.date_to)
    if filters.patient:
        studies = studies.filter(patient__pseudonym__istartswith=filters.patient.strip())  # prefix
    if filters.burned_in_review:
        studies = studies.filter(burned_in_review=filters.burned_in_review)
    first_instance = Instance.objects.filter(series__study=OuterRef("pk")).order_by("pk")
    return (
        studies.annotate(
            series_count=Count("series", distinct=True),
            instance_count=Count("series__instances", distinct=True),
            received_from=Subquery(first_instance.values("received_from")[:1]),
        )
        .prefetch_related(Prefetch("series", queryset=Series.objects.order_by("series_number", "pk")))
        .order_by(*STUDY_SORTS.get(filters.sort, STUDY_SORTS["received"]))
    )


def study_row(study: Study) -> dict:
    """What the study list shows of a study: what de-identification keeps or Suite derives."""
    series = list(study.series.all())
    return {
        "modalities": study.modalities.replace("\\", ", "),
        "body_parts": ", ".join(
            dict.fromkeys(item.body_part_examined for item in series if item.body_part_examined)
        ),
        "descriptions": "; ".join(dict.fromkeys(item.description for item in series if item.description)),
    }


def study_for(user, study_id, *, action: str = "view", actor=None) -> Study:
    """The study if `user` may `action` it, else Http404 (after trailing the denial).

    Allowed reads are trailed too (HIPAA 164.312(b)): every study page, preview, question and
    original reaches patient data through here or instance_for.
    """
    from access.enforcement import check
    from access.errors import PolicyDenied

    study = Study.objects.select_related("patient").filter(pk=_pk(study_id)).first()
    if study is None:
        raise Http404(NOT_FOUND_MESSAGE)
    try:
        check(user, action, study, actor=actor, record_allowed=True)
    except PolicyDenied as denied:
        raise Http404(NOT_FOUND_MESSAGE) from denied  # the 404 handler makes sure it is trailed
    return study


def instance_for(user, instance_id, *, action: str = "view", actor=None) -> Instance:
    """The instance if `user` may `action` its study, else Http404 (after trailing the denial)."""
    instance = Instance.objects.select_related("series__study").filter(pk=_pk(instance_id)).first()
    if instance is None:
        raise Http404(NOT_FOUND_MESSAGE)
    study_for(user, instance.series.study_id, action=action, actor=actor)
    return instance


def instance_for_break_glass(instance_id) -> Instance:
    """Break-glass reaches across departments, so the lookup is unscoped; the service decides."""
    instance = Instance.objects.select_related("series__study").filter(pk=_pk(instance_id)).first()
    if instance is None:
        raise Http404(NOT_FOUND_MESSAGE)
    return instance


def study_series(study: Study) -> list:
    """Series of a study with their instances, in acquisition order."""
    return list(study.series.prefetch_related("instances").order_by("series_number", "pk"))


def study_questions(study: Study, *, limit: int = 50) -> list[StudyQuestion]:
    return list(study.questions.select_related("asked_by").order_by("-created_at", "-pk")[:limit])[::-1]


def study_shared_with(study: Study) -> list[str]:
    rows = StudyUserObjectPermission.objects.filter(content_object=study, permission__codename="view_study")
    return sorted(rows.values_list("user__username", flat=True))


def quarantine_for(user, *, limit: int = 20) -> QuerySet[QuarantinedFile]:
    """Recent refused files of the departments the user may upload for (none otherwise)."""
    from access.decisions import decide
    from access.resources import Resource

    department = getattr(user, "department", "") or ""
    if not department or not decide(user, "upload", Resource("study", "new", {"department": department})):
        return QuarantinedFile.objects.none()
    return QuarantinedFile.objects.filter(department=department).order_by("-created_at", "-pk")[:limit]


def _pk(value) -> int:
    try:
        return int(value)
    except (TypeError, ValueError):
        raise Http404(NOT_FOUND_MESSAGE) from None
