"""The maintenance assistant: an engineer describes a problem on a work order; past work orders
(lexical TF-IDF retrieval re-ranked by `inference.services.embed` similarity), the asset's current
condition (vibration zone and fault call, RUL band) and the failure-mode classifier of
manufacturing.analysis (when present) ground a suggested failure mode, and the local LLM drafts a
diagnosis from that evidence. The engineer accepts or corrects it; the verdict is trailed and the
reviewed work order joins the history, weighted above unreviewed rows, for the next suggestion.
"""

from __future__ import annotations

import logging
import threading
from collections import defaultdict
from dataclasses import asdict, dataclass, field

from django.conf import settings
from django.db import transaction
from django.db.models import Max, Q
from django.utils import timezone

from access.enforcement import check
from audit.services import record
from manufacturing.analysis.vibration import fault_label
from manufacturing.models import FailureCode, FailureSuggestion, VibrationAnalysis, WorkOrder
from manufacturing.services.failure_classifier import (
    ClassifierUnavailable,
    code_of,
    current_classifier,
    queue_refit_if_due,
)

logger = logging.getLogger(__name__)

NEIGHBOURS = 8
LEXICAL_CANDIDATES = 20
REVIEWED_WEIGHT = 2.0  # an engineer's verdict counts twice an imported label
SOURCE_WEIGHTS = {"history": 0.55, "classifier": 0.3, "vibration": 0.15}
VIBRATION_FAULTS = {"inner_race", "outer_race", "ball", "cage", "imbalance", "misalignment", "looseness"}
DRAFT_MAX_TOKENS = 96


class SuggestionRefused(Exception):
    """A suggestion or review that cannot be made; the message says what to fix (maps to 400)."""


def model_name() -> str:
    return getattr(settings, "MANUFACTURING_ASSISTANT_MODEL", "manufacturing_assistant")


@dataclass
class Neighbour:
    work_order: int
    reference: str
    title: str
    code: str
    score: float
    reviewed: bool


@dataclass
class Evidence:
    neighbours: list[Neighbour] = field(default_factory=list)
    vibration: dict | None = None
    rul: dict | None = None
    classifier: list[tuple[str, float]] = field(default_factory=list)
    candidates: list[tuple[str, float]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


# --- the history index (built once per state of the labelled history, per process) -----------------
_index_lock = threading.Lock()
_index: dict = {}


def _labelled_history() -> tuple[list[int], list[str], list[str], list[bool]]:
    """Work orders with a failure mode (closed or imported) or an engineer-reviewed suggestion."""
    reviewed = dict(
        FailureSuggestion.objects.exclude(verdict=FailureSuggestion.Verdict.PENDING)
        .order_by("work_order_id", "created_at", "pk")
        .values_list("work_order_id", "final_code")
    )  # the latest review of each work order wins
    rows = WorkOrder.objects.filter(~Q(failure_mode="") | Q(pk__in=list(reviewed))).values_list(
        "pk", "title", "description", "failure_mode"
    )
    ids, texts, codes, flags = [], [], [], []
    for pk, title, description, code in rows.iterator(chunk_size=2000):
        label = reviewed.get(pk) or code
        if not label:
            continue
        ids.append(pk)
        texts.append(f"{title} {description if description != title else ''}".strip()[:600])
        codes.append(label)
        flags.append(pk in reviewed)
    return ids, texts, codes, flags


def _fingerprint() -> tuple:
    work_orders = WorkOrder.objects.exclude(failure_mode="").aggregate(last=Max("updated_at"), top=Max("pk"))
    reviews = FailureSuggestion.objects.exclude(verdict="pending").aggregate(last=Max("reviewed_at"))
    return (
        WorkOrder.objects.exclude(failure_mode="").count(),
        work_orders["top"],
        str(work_orders["last"]),
        str(reviews["last"]),
    )


def _history_index() -> dict:
    from sklearn.feature_extraction.text import TfidfVectorizer

    key = _fingerprint()
    with _index_lock:
        if _index.get("key") == key:
            return _index
        ids, texts, codes, flags = _labelled_history()
        if texts:
            vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True, lowercase=True)
            matrix = vectorizer.fit_transform(texts)
        else:
            vectorizer, matrix = None, None
        _index.clear()
        _index.update(
            key=key, ids=ids, texts=texts, codes=codes, reviewed=flags, vectorizer=vectorizer, matrix=matrix
        )
        return _index


def similar_work_orders(
    *, user, text: str, exclude: int | None = None, k: int = NEIGHBOURS
) -> tuple[list[Neighbour], str]:
    """The `k` labelled work orders most like `text` that `user` may view, and a note on the method."""
    import numpy as np

    from manufacturing.selectors import work_order_ids_visible_to

    index = _history_index()
    if index["vectorizer"] is None:
        return [], "no labelled work orders yet"
    lexical = (index["matrix"] @ index["vectorizer"].transform([text]).T).toarray().ravel()
    visible = work_order_ids_visible_to(user)
    allowed = np.fromiter((pk in visible and pk != exclude for pk in index["ids"]), bool, len(index["ids"]))
    lexical = np.where(allowed, lexical, -1.0)
    order = [i for i in np.argsort(-lexical)[:LEXICAL_CANDIDATES] if lexical[i] > 0]
    if not order:
        return [], "no past work order shares a word with the description"
    scores = {i: float(lexical[i]) for i in order}
    method = "lexical TF-IDF"
    try:
        from inference.services import embed

        cache = index.setdefault("embeddings", {})
        missing = [i for i in order if i not in cache]
        for i, vector in zip(
            missing, embed([index["texts"][i] for i in missing]) if missing else [], strict=True
        ):
            cache[i] = np.asarray(vector)
        query = np.asarray(embed([text])[0])
        semantic = [float(cache[i] @ query) for i in order]
        top = max(scores.values()) or 1.0
        scores = {i: 0.5 * scores[i] / top + 0.5 * float(s) for i, s in zip(order, semantic, strict=True)}
        method = "lexical TF-IDF re-ranked by all-MiniLM-L6-v2 embeddings"
    except Exception as error:  # the embedding model is optional at run time: fall back to lexical
        logger.warning("assistant retrieval without embeddings: %s", error)
    best = sorted(order, key=lambda i: -scores[i])[:k]
    titles = dict(
        WorkOrder.objects.filter(pk__in=[index["ids"][i] for i in best]).values_list("pk", "external_id")
    )
    return [
        Neighbour(
            work_order=index["ids"][i],
            reference=titles.get(index["ids"][i]) or f"WO {index['ids'][i]}",
            title=index["texts"][i][:160],
            code=index["codes"][i],
            score=round(scores[i], 4),
            reviewed=index["reviewed"][i],
        )
        for i in best
    ], method


# --- the stored failure-mode classifier (fitted once by train_failure_classifier, never per request) ---
def _classifier_suggest(text: str, k: int = 3) -> tuple[list[tuple[str, float]], int]:
    """([(mode code, probability)], classifier version) from the latest stored classifier;
    ClassifierUnavailable when none is trained (the suggestion then rests on history and condition)."""
    model, row = current_classifier()
    known = set(FailureCode.objects.filter(kind=FailureCode.Kind.MODE).values_list("code", flat=True))
    out = []
    for label, probability in model.suggest(text, k):
        code = code_of(label)
        if code in known:
            out.append((code, float(probability)))
    return out, row.version


# --- condition ------------------------------------------------------------------------------------
def _condition(work_order: WorkOrder) -> tuple[dict | None, dict | None]:
    if work_order.machine_id is None:
        return None, None
    analysis = (
        VibrationAnalysis.objects.filter(recording__machine_id=work_order.machine_id)
        .order_by("-recording__recorded_at", "-pk")  # the latest measured, as the asset page shows
        .first()
    )
    vibration = (
        {
            "recording": analysis.recording_id,
            "zone": analysis.zone,
            "rms_velocity": round(analysis.rms_velocity, 3),
            "fault": analysis.fault,  # "" : no bearing geometry, so no call was made
            "kurtosis": round(analysis.kurtosis, 2),
        }
        if analysis
        else None
    )
    prediction = work_order.machine.rul_predictions.first()
    rul = (
        {
            "rul": round(prediction.rul, 1),
            "lower": round(prediction.lower, 1),
            "upper": round(prediction.upper, 1),
        }
        if prediction
        else None
    )
    return vibration, rul


def _combine(evidence: Evidence) -> list[tuple[str, float]]:
    scores: dict[str, float] = defaultdict(float)
    votes: dict[str, float] = defaultdict(float)
    for neighbour in evidence.neighbours:
        votes[neighbour.code] += max(neighbour.score, 0.0) * (REVIEWED_WEIGHT if neighbour.reviewed else 1.0)
    total = sum(votes.values())
    for code, vote in votes.items():
        scores[code] += SOURCE_WEIGHTS["history"] * vote / total
    for code, probability in evidence.classifier:
        scores[code] += SOURCE_WEIGHTS["classifier"] * probability
    vibration = evidence.vibration or {}
    if vibration.get("fault") in VIBRATION_FAULTS or vibration.get("zone") in ("C", "D"):
        scores["VIB"] += SOURCE_WEIGHTS["vibration"]
    known = set(
        FailureCode.objects.filter(kind=FailureCode.Kind.MODE, code__in=list(scores)).values_list(
            "code", flat=True
        )
    )
    ranked = sorted(
        ((code, score) for code, score in scores.items() if code in known), key=lambda item: -item[1]
    )
    norm = sum(score for _, score in ranked) or 1.0
    return [(code, round(score / norm, 4)) for code, score in ranked[:3]]


def _prompt(work_order: WorkOrder, problem: str, evidence: Evidence, descriptions: dict) -> list[dict]:
    lines = [f"Asset: {work_order.machine or work_order.equipment_label}", f"Problem: {problem}"]
    if evidence.vibration:
        v = evidence.vibration
        lines.append(
            f"Vibration: zone {v['zone']}, {v['rms_velocity']} mm/s RMS, bearing fault call: "
            f"{fault_label(v['fault'])}"
        )
    if evidence.rul:
        lines.append(
            f"Remaining life: {evidence.rul['rul']} cycles [{evidence.rul['lower']}, {evidence.rul['upper']}]"
        )
    for neighbour in evidence.neighbours[:4]:
        lines.append(f"Past: {neighbour.title[:100]} -> {descriptions.get(neighbour.code, neighbour.code)}")
    if evidence.candidates:
        code = evidence.candidates[0][0]
        lines.append(f"Most likely failure mode: {code} ({descriptions.get(code, code)})")
    return [
        # This wording keeps the demo's 135M model from looping ("the first check to make is a failure
        # mode of ..." repeated to the token limit) on the bearing, leak and engine cases tried.
        {
            "role": "system",
            "content": "You are a maintenance assistant for plant engineers. Use only the facts given. "
            "Answer in two short sentences. Sentence 1: what is most likely wrong and why (cite the "
            "evidence). Sentence 2: the first thing to check or do.",
        },
        {"role": "user", "content": "\n".join(lines)},
    ]


def _draft(*, user, messages: list[dict], fallback: str) -> tuple[str, str, int | None, str]:
    """(diagnosis, model name, generation id, note): the LLM's draft, or `fallback` with the reason."""
    from inference.services import GenerationParams, completion_create, resolve_target

    name = model_name()
    try:
        target = resolve_target(name)
    except Exception:
        return fallback, "", None, f"the model {name!r} is not registered: the draft lists the evidence"
    try:
        completion = completion_create(
            user=user,
            target=target,
            prompt=messages,
            params=GenerationParams(max_tokens=DRAFT_MAX_TOKENS, temperature=0.0),
            endpoint="manufacturing.assistant",
        )
    except Exception as error:  # denied, overloaded, engine error: the evidence still stands
        logger.warning("assistant draft without the model: %s", error)
        return fallback, name, None, f"the model could not answer ({type(error).__name__})"
    text = completion.result.text.strip()
    return text or fallback, name, completion.generation_id, ""


def assistant_suggest(*, actor, work_order: WorkOrder, problem: str = "") -> FailureSuggestion:
    """Suggest a failure mode and draft a diagnosis for `work_order` (the actor needs `work` on it)."""

    decision = check(actor, "work", work_order)
    problem = (problem or f"{work_order.title}. {work_order.description}").strip()
    if len(problem) < 3:
        raise SuggestionRefused("describe the problem in a few words, e.g. 'pump DE bearing hot and noisy'")
    if work_order.status in WorkOrder.TERMINAL:
        raise SuggestionRefused(f"the work order is {work_order.status}: suggestions are for open work")
    evidence = Evidence()
    evidence.neighbours, method = similar_work_orders(user=actor, text=problem, exclude=work_order.pk)
    evidence.notes.append(f"retrieval: {method}")
    evidence.vibration, evidence.rul = _condition(work_order)
    try:
        evidence.classifier, version = _classifier_suggest(problem)
        evidence.notes.append(f"classifier: stored failure-mode classifier v{version}")
    except ClassifierUnavailable as error:
        evidence.notes.append(f"classifier unavailable: {error}")
    except Exception as error:
        logger.warning("failure-mode classifier unavailable: %s", error)
        evidence.notes.append(f"classifier unavailable ({type(error).__name__})")
    evidence.candidates = _combine(evidence)
    descriptions = dict(
        FailureCode.objects.filter(kind=FailureCode.Kind.MODE).values_list("code", "description")
    )
    suggested = evidence.candidates[0][0] if evidence.candidates else ""
    fallback = (
        f"Similar past work points to {suggested} {descriptions.get(suggested, '')}".strip() + "."
        if suggested
        else "No similar past work order: describe the symptom in more detail."
    )
    diagnosis, used_model, generation_id, note = _draft(
        user=actor, messages=_prompt(work_order, problem, evidence, descriptions), fallback=fallback
    )
    if note:
        evidence.notes.append(note)
    return _suggestion_store(
        actor=actor,
        work_order=work_order,
        problem=problem,
        suggested=suggested,
        diagnosis=diagnosis,
        evidence=evidence,
        model=used_model,
        generation_id=generation_id,
        policy=decision.policy or "",
        descriptions=descriptions,
    )


@transaction.atomic
def _suggestion_store(
    *, actor, work_order, problem, suggested, diagnosis, evidence, model, generation_id, policy, descriptions
) -> FailureSuggestion:

    suggestion = FailureSuggestion.objects.create(
        work_order=work_order,
        problem=problem[:2000],
        suggested_code=suggested,
        diagnosis=diagnosis[:4000],
        evidence={
            "neighbours": [
                asdict(n) | {"description": descriptions.get(n.code, "")} for n in evidence.neighbours
            ],
            "vibration": evidence.vibration,
            "rul": evidence.rul,
            "classifier": evidence.classifier,
            "candidates": [
                {"code": code, "score": score, "description": descriptions.get(code, "")}
                for code, score in evidence.candidates
            ],
            "notes": evidence.notes,
        },
        model_name=model,
        generation_id=generation_id,
        requested_by=actor,
    )
    record(
        actor=actor,
        action="work_order.suggest",
        resource_type="work_order",
        resource_id=work_order.pk,
        outcome="succeeded",
        policy=policy,
        payload={
            "site": work_order.site,
            "suggestion": suggestion.pk,
            "suggested_code": suggested,
            "candidates": [code for code, _ in evidence.candidates],
            "neighbours": [n.work_order for n in evidence.neighbours],
            "vibration": evidence.vibration,
            "model": model,
            "generation": generation_id,
        },
    )
    return suggestion


@transaction.atomic
def suggestion_review(*, actor, suggestion: FailureSuggestion, code: str) -> FailureSuggestion:
    """The engineer's verdict: `code` equal to the suggestion accepts it, another known mode corrects it."""

    suggestion = (
        FailureSuggestion.objects.select_for_update().select_related("work_order").get(pk=suggestion.pk)
    )
    decision = check(actor, "work", suggestion.work_order)
    code = (code or "").strip()
    if not FailureCode.objects.filter(kind=FailureCode.Kind.MODE, code=code).exists():
        raise SuggestionRefused(f"{code!r} is not a known failure mode code: pick one from the list")
    if suggestion.verdict != FailureSuggestion.Verdict.PENDING:
        raise SuggestionRefused(f"this suggestion was already {suggestion.verdict} ({suggestion.final_code})")
    suggestion.verdict = (
        FailureSuggestion.Verdict.ACCEPTED
        if code == suggestion.suggested_code
        else FailureSuggestion.Verdict.CORRECTED
    )
    suggestion.final_code = code
    suggestion.reviewed_by = actor
    suggestion.reviewed_at = timezone.now()
    suggestion.save(update_fields=["verdict", "final_code", "reviewed_by", "reviewed_at"])
    record(
        actor=actor,
        action="work_order.suggestion_review",
        resource_type="work_order",
        resource_id=suggestion.work_order_id,
        outcome="succeeded",
        policy=decision.policy or "",
        payload={
            "site": suggestion.work_order.site,
            "suggestion": suggestion.pk,
            "verdict": suggestion.verdict,
            "suggested_code": suggestion.suggested_code,
            "final_code": code,
        },
    )
    queue_refit_if_due()  # enough new verdicts: the classifier is refitted on a worker, after commit
    return suggestion
