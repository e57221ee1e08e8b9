"""The medical app's settings, each read with a safe default (nothing here is required in settings.py).
The model that phrases answers is no setting: it is the QA default (inference.services.default_target).

| setting | default | meaning |
|---|---|---|
| DICOM_UID_KEY | "" | secret for the keyed UID and patient pseudonyms; empty: a random key sealed by the vault |
| DICOM_AE_ALLOWLIST | {"MODALITY1": "radiology", "ECHO1": "cardiology"} | calling AE title -> department |
| DICOM_SCP_AE_TITLE | "SUITE" | the AE title `run_dicom_scp` answers to |
| MEDICAL_DATA_DIR | VAR_DIR/medical | sealed originals, the sealed UID key |
| MEDICAL_DEID_OPTIONS | {} | PS3.15 options switched on or off (DeidOptions field -> bool) |
| MEDICAL_UPLOAD_MAX_FILE_BYTES | 256 MiB | one uploaded file, or one archive member |
| MEDICAL_UPLOAD_MAX_TOTAL_BYTES | 1 GiB | one upload request (archives: once expanded) |
| MEDICAL_UPLOAD_MAX_FILES | 2000 | files in one upload request (archives: members) |
| MEDICAL_QA_EMBEDDINGS | True | QA retrieval adds embedding similarity (inference.services.embed) to lexical matching |
| MEDICAL_FRAME_CACHE_DIR | VAR_DIR/cache/medical-frames | viewer frames rendered by the worker (safe to delete) |
| MEDICAL_FRAME_CACHE_WINDOWS | 16 | windows kept per image besides the default (least recently used dropped first) |
| MEDICAL_FRAME_CACHE_MAX_BYTES | 2 GiB | the whole frame cache; the least recently used windows are dropped beyond it |
| MEDICAL_FRAME_CACHE_TRIM_SECONDS | 30 | a worker checks the cache's size at most this often (after a render) |
| MEDICAL_FRAME_WAIT_SECONDS | 5 | how long a frame request waits for the worker before answering 503 (it holds a web thread) |
| MEDICAL_FRAME_QUEUED_NOTICE_SECONDS | 10 | a render no worker started for this long is reported as stalled, at once |
| MEDICAL_RENDER_QUEUE | "" | Celery queue of viewer renders; empty: the default queue |
"""

from __future__ import annotations

from pathlib import Path

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured

from medical.dicom import DeidOptions

DEFAULT_AE_ALLOWLIST = {"MODALITY1": "radiology", "ECHO1": "cardiology"}


def ae_allowlist() -> dict[str, str]:
    """Calling AE title (as sent, without padding) -> department code."""
    configured = getattr(settings, "DICOM_AE_ALLOWLIST", None)
    mapping = DEFAULT_AE_ALLOWLIST if configured is None else configured
    if not isinstance(mapping, dict) or not all(
        isinstance(title, str) and isinstance(department, str) and title.strip() and department
        for title, department in mapping.items()
    ):
        raise ImproperlyConfigured(
            "DICOM_AE_ALLOWLIST must map calling AE titles to department codes, e.g. {'MODALITY1': 'radiology'}."
        )
    return {title.strip(): department for title, department in mapping.items()}


def scp_ae_title() -> str:
    return str(getattr(settings, "DICOM_SCP_AE_TITLE", "SUITE") or "SUITE")


def data_dir() -> Path:
    configured = getattr(settings, "MEDICAL_DATA_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "medical"


def media_root() -> Path:
    return Path(settings.MEDIA_ROOT)


def deid_options() -> DeidOptions:
    overrides = getattr(settings, "MEDICAL_DEID_OPTIONS", None) or {}
    try:
        return DeidOptions(**{name: bool(value) for name, value in overrides.items()})
    except TypeError as exc:
        raise ImproperlyConfigured(f"MEDICAL_DEID_OPTIONS names an unknown option: {exc}") from None


def upload_max_file_bytes() -> int:
    return int(getattr(settings, "MEDICAL_UPLOAD_MAX_FILE_BYTES", 256 << 20))


def upload_max_total_bytes() -> int:
    return int(getattr(settings, "MEDICAL_UPLOAD_MAX_TOTAL_BYTES", 1 << 30))


def upload_max_files() -> int:
    return int(getattr(settings, "MEDICAL_UPLOAD_MAX_FILES", 2000))


def qa_uses_embeddings() -> bool:
    return bool(getattr(settings, "MEDICAL_QA_EMBEDDINGS", True))


def frame_cache_dir() -> Path:
    configured = getattr(settings, "MEDICAL_FRAME_CACHE_DIR", None)
    return Path(configured) if configured else Path(settings.VAR_DIR) / "cache" / "medical-frames"


def frame_cache_windows() -> int:
    return max(1, int(getattr(settings, "MEDICAL_FRAME_CACHE_WINDOWS", 16)))


def frame_cache_max_bytes() -> int:
    return max(1, int(getattr(settings, "MEDICAL_FRAME_CACHE_MAX_BYTES", 2 << 30)))


def frame_cache_trim_seconds() -> float:
    return max(0.0, float(getattr(settings, "MEDICAL_FRAME_CACHE_TRIM_SECONDS", 30)))


def frame_wait_seconds() -> float:
    return max(0.0, float(getattr(settings, "MEDICAL_FRAME_WAIT_SECONDS", 5)))


def frame_queued_notice_seconds() -> float:
    """A frame render queued this long without a worker starting it is reported at once as stalled."""
    return max(0.0, float(getattr(settings, "MEDICAL_FRAME_QUEUED_NOTICE_SECONDS", 10)))


def frame_render_queue() -> str:
    """The Celery queue of viewer renders: MEDICAL_RENDER_QUEUE, else the default queue."""
    return getattr(settings, "MEDICAL_RENDER_QUEUE", None) or settings.CELERY_TASK_DEFAULT_QUEUE
