"""Reads of the decision trail, always scoped by the acting user."""

from __future__ import annotations

import datetime as dt

from django.db.models import QuerySet

from audit.models import ChainHead, Checkpoint, Event
from audit.permissions import can_export_trail, can_read_trail, readable_event_types
from audit.verification import registered_chains


def events_for(
    user,
    *,
    chain: str | None = None,
    actor: str | None = None,
    action: str | None = None,
    resource_type: str | None = None,
    resource_id: str | None = None,
    outcome: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[Event]:
    """Events `user` may read, newest first, narrowed by the given filters (empty ones are ignored).

    actor matches part of the actor label (a username or "task:..."), case-insensitively;
    action matches a prefix ("auth." finds every login event); since is inclusive, until exclusive.
    """
    if not can_read_trail(user):
        return Event.objects.none()
    events = _readable(user, Event.objects.all())
    if chain:
        events = events.filter(chain=chain)
    if actor:
        events = events.filter(actor_label__icontains=actor)
    if action:
        events = events.filter(action__startswith=action)
    if resource_type:
        events = events.filter(resource_type=resource_type)
    if resource_id:
        events = events.filter(resource_id=resource_id)
    if outcome:
        events = events.filter(outcome=outcome)
    if since:
        events = events.filter(timestamp__gte=since)
    if until:
        events = events.filter(timestamp__lt=until)
    return events.order_by("-timestamp", "-id")


def events_for_export(
    user,
    *,
    chain: str | None = None,
    since: dt.datetime | None = None,
    until: dt.datetime | None = None,
) -> QuerySet[Event]:
    """Events `user` may export, in chain order so the export can be re-verified.

    user None means a trusted operator on the server's command line (manage.py export_trail).
    """
    if user is not None and not can_export_trail(user):
        return Event.objects.none()
    # A role that reads only some event types exports only those: each exported event's hash
    # still checks against its prev_hash, but only an export of every type is a whole chain.
    events = Event.objects.all() if user is None else _readable(user, Event.objects.all())
    if chain:
        events = events.filter(chain=chain)
    if since:
        events = events.filter(timestamp__gte=since)
    if until:
        events = events.filter(timestamp__lt=until)
    return events.order_by("chain", "sequence")


def _readable(user, events: QuerySet[Event]) -> QuerySet[Event]:
    """Only the events whose resource type the policy lets `user` read (trail_event:<type>)."""
    present = Event.objects.order_by().values_list("resource_type", flat=True).distinct()
    return events.filter(resource_type__in=readable_event_types(user, present))


def chain_names() -> list[str]:
    """Every chain anything knows of: heads, events, signed checkpoints and the chain registry.

    A chain whose events were all deleted still appears (its checkpoint or registration remains),
    so verification reports it instead of skipping it.
    """
    heads = set(ChainHead.objects.values_list("chain", flat=True))
    events = set(Event.objects.values_list("chain", flat=True).distinct())
    checkpoints = set(Checkpoint.objects.values_list("chain", flat=True).distinct())
    return sorted(heads | events | checkpoints | registered_chains())


def checkpoints_for(chain: str) -> QuerySet[Checkpoint]:
    return Checkpoint.objects.filter(chain=chain).order_by("-size")
