"""The assistant's failure-mode classifier: fitted once (bootstrap_demo, `train_failure_classifier`, or
the Celery task `manufacturing.train_failure_classifier`), stored as a versioned joblib file under
MODEL_ROOT with its sha256 on a `FailureClassifierVersion` row (trailed `failure_classifier.train`),
then loaded by every process that suggests. A request never fits it.

Training data: the labelled technician text of shared/data/failure_modes (`fmc_mwo2kg_train.csv`, or
the setting MANUFACTURING_FAILURE_MODES_TRAIN) plus every suggestion an engineer accepted or
corrected (its problem text with the final code). Once MANUFACTURING_CLASSIFIER_REFIT_REVIEWS (default
20) reviews have accumulated beyond those the current version learnt from, a review queues a refit.
"""

from __future__ import annotations

import hashlib
import io
import logging
import threading
import time
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db.models import Max

from audit.services import record
from manufacturing.models import FailureClassifierVersion, FailureSuggestion
from manufacturing.services.failure_codes import ISO_MODES

logger = logging.getLogger(__name__)

STORE_DIR = Path("manufacturing") / "failure_modes"
REFIT_REVIEWS_DEFAULT = 20


class ClassifierUnavailable(Exception):
    """No stored classifier can be used (none trained yet, file missing or altered); says what to do."""


def base_training_path() -> Path:
    default = Path(settings.SHARED_DATA_DIR) / "failure_modes" / "fmc_mwo2kg_train.csv"
    return Path(getattr(settings, "MANUFACTURING_FAILURE_MODES_TRAIN", default))


def weak_training_path() -> Path:
    default = Path(settings.SHARED_DATA_DIR) / "failure_modes" / "excavator_work_orders.csv"
    return Path(getattr(settings, "MANUFACTURING_FAILURE_MODES_WEAK", default))


def refit_reviews() -> int:
    return int(getattr(settings, "MANUFACTURING_CLASSIFIER_REFIT_REVIEWS", REFIT_REVIEWS_DEFAULT))


def label_of(code: str) -> str:
    """The classifier's label for a failure-mode code: the ISO mode's name (the labels of the technician
    text), else the code itself (a site's own mode)."""
    return ISO_MODES.get(code, code)


def code_of(label: str) -> str:
    by_name = {name.lower(): code for code, name in ISO_MODES.items()}
    return by_name.get(str(label).lower(), str(label))


def training_examples() -> tuple[list[str], list[str], int]:
    """(texts, labels, reviews used): the base file plus the engineers' accepted or corrected choices."""
    from manufacturing.analysis.failure_modes import read_labelled

    texts, labels = read_labelled(base_training_path())
    reviewed = (
        FailureSuggestion.objects.exclude(verdict=FailureSuggestion.Verdict.PENDING)
        .exclude(final_code="")
        .exclude(problem="")
        .order_by("pk")
        .values_list("problem", "final_code")
    )
    count = 0
    for problem, code in reviewed:
        texts.append(problem[:600])
        labels.append(label_of(code))
        count += 1
    return texts, labels, count


def failure_classifier_train(*, actor, embed=None, use_embeddings: bool = True) -> FailureClassifierVersion:
    """Fit the classifier on the training examples and store it as the next version (trailed)."""
    from manufacturing.analysis.failure_modes import (
        HEAD_WEIGHT,
        TUNING,
        WEAK_WEIGHT,
        FailureModeClassifier,
        weak_examples,
    )

    if embed is None and use_embeddings:
        from inference.services import embed
    # The fine-tuning recipe (epochs, layers, ...): the adopted one unless a deployment sets its own.
    tuning = getattr(settings, "MANUFACTURING_FAILURE_TUNING", TUNING)
    encoder_dir = None
    if use_embeddings and tuning is not None:  # the recipe fine-tunes its own copy of the model
        from inference.services import embedding_model_dir

        encoder_dir = embedding_model_dir()
    texts, labels, reviews = training_examples()
    weak: dict = {}
    if WEAK_WEIGHT > 0:
        try:
            weak_texts, weak_labels = weak_examples(weak_training_path())
            weak = {"weak_texts": weak_texts, "weak_labels": weak_labels, "weak_weight": WEAK_WEIGHT}
        except (OSError, ValueError) as error:  # the recipe without them is still a working classifier
            logger.warning("failure-mode classifier fitted without weakly labelled examples: %s", error)
    started = time.perf_counter()
    classifier = FailureModeClassifier(
        embed if use_embeddings else None, encoder_dir=encoder_dir, tuning=tuning, head_weight=HEAD_WEIGHT
    ).fit(texts, labels, **weak)
    return failure_classifier_store(
        actor=actor,
        classifier=classifier,
        examples=len(texts),
        reviews_used=reviews,
        description={
            "source": str(base_training_path()),
            "reviewed_examples": reviews,
            "weak_examples": classifier.weak_examples,
            "classes": len(classifier.classes),
            "method": classifier.method(),
            "fit_seconds": round(time.perf_counter() - started, 2),
            "tuned_encoder_bytes": classifier.encoder.size_bytes() if classifier.encoder else 0,
        },
    )


def failure_classifier_store(
    *, actor, classifier, examples: int, reviews_used: int = 0, description: dict | None = None
) -> FailureClassifierVersion:
    """Write `classifier` (fitted) as the next version's joblib file and its row, trailed together;
    the file is removed again if the row cannot be written."""
    import joblib

    root = Path(settings.MODEL_ROOT)
    for attempt in range(3):  # two trainings finishing together: the second takes the next number
        version = (FailureClassifierVersion.objects.aggregate(top=Max("version"))["top"] or 0) + 1
        relative = STORE_DIR / f"failure_modes_v{version}.joblib"
        target = root / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_suffix(".partial")
        joblib.dump(classifier, partial, compress=3)
        digest = hashlib.sha256(partial.read_bytes()).hexdigest()
        try:
            with transaction.atomic():
                row = FailureClassifierVersion.objects.create(
                    version=version,
                    path=relative.as_posix(),
                    sha256=digest,
                    examples=examples,
                    reviews_used=reviews_used,
                    description=description or {},
                    trained_by=str(getattr(actor, "username", actor))[:150],
                )
                record(
                    actor=actor,
                    action="failure_classifier.train",
                    resource_type="model",
                    resource_id=f"manufacturing_failure_modes:v{version}",
                    outcome="succeeded",
                    payload={
                        "version": version,
                        "path": row.path,
                        "sha256": digest,
                        "examples": examples,
                        "reviews_used": reviews_used,
                        "classes": len(classifier.classes),
                    },
                )
        except IntegrityError:
            partial.unlink(missing_ok=True)
            if attempt == 2:
                raise
            continue
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        return row
    raise AssertionError("unreachable")


# --- loading (once per version per process) ---------------------------------------------------------
_lock = threading.Lock()
_loaded: dict = {}


def current_classifier(embed=None):
    """(classifier, version row) of the latest stored version, loaded once per process and checked
    against its sha256; ClassifierUnavailable says what to do when there is none."""
    import joblib

    row = FailureClassifierVersion.objects.order_by("-version").first()
    if row is None:
        raise ClassifierUnavailable(
            "no failure-mode classifier is trained yet: run `manage.py train_failure_classifier`"
        )
    with _lock:
        if _loaded.get("key") == (row.pk, row.sha256):
            return _loaded["classifier"], row
        path = Path(settings.MODEL_ROOT) / row.path
        try:
            data = path.read_bytes()
        except OSError:
            raise ClassifierUnavailable(
                f"the stored classifier v{row.version} is missing ({path}): run "
                "`manage.py train_failure_classifier`"
            ) from None
        if hashlib.sha256(data).hexdigest() != row.sha256:
            raise ClassifierUnavailable(
                f"the stored classifier v{row.version} does not match its recorded sha256: not loaded; "
                "retrain it with `manage.py train_failure_classifier`"
            )
        from manufacturing.analysis.encoder_tuning import EncoderMismatch

        if embed is None:
            from inference.services import embed
        classifier = joblib.load(io.BytesIO(data))  # the bytes that were checked
        encoder_dir = None
        if getattr(classifier, "encoder", None) is not None:  # it tuned its own copy of the model
            from inference.services import embedding_model_dir

            encoder_dir = embedding_model_dir()
        try:
            classifier.attach(embed, encoder_dir)
        except EncoderMismatch:
            raise ClassifierUnavailable(
                f"the stored classifier v{row.version} was tuned from another version of the embedding "
                "model: retrain it with `manage.py train_failure_classifier`"
            ) from None
        _loaded.clear()
        _loaded.update(key=(row.pk, row.sha256), classifier=classifier)
        return classifier, row


def refit_due() -> bool:
    """True when enough reviewed suggestions came in since the current version was fitted."""
    reviewed = FailureSuggestion.objects.exclude(verdict=FailureSuggestion.Verdict.PENDING).count()
    row = FailureClassifierVersion.objects.order_by("-version").first()
    return reviewed - (row.reviews_used if row else 0) >= refit_reviews()


def queue_refit_if_due() -> bool:
    """Queue `manufacturing.train_failure_classifier` after the current transaction when a refit is due
    (a broker outage is logged; the next review or the command catches up)."""
    if not refit_due():
        return False

    def enqueue() -> None:
        from manufacturing.tasks import train_failure_classifier

        try:
            train_failure_classifier.delay()
        except Exception:
            logger.exception("could not queue the failure-mode classifier refit")

    transaction.on_commit(enqueue)
    return True
