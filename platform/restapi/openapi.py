"""Schema pieces several APIs share (drf-spectacular)."""

from __future__ import annotations

from drf_spectacular.utils import OpenApiParameter


def idempotency_key(what: str, replay: str, other: str) -> OpenApiParameter:
    """The `Idempotency-Key` request header of a call that records something: `what` it records, what
    the same key and body sent again answers (`replay`), and what the key with another body does."""
    return OpenApiParameter(
        "Idempotency-Key",
        str,
        OpenApiParameter.HEADER,
        description=(
            f"Your key for this {what} (1-64 letters, digits, '-' or '_', e.g. a UUID). Sent again with "
            f"{replay} (header Idempotent-Replayed: true); with {other}, 422."
        ),
    )
