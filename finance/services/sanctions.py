"""Sanctions and PEP lists: versioned imports, the screening index, expiring whitelist decisions.

- ``sanctions_list_import`` reads a CSV in the format of ``un_list.csv`` (all or nothing, every bad
  row reported), stores it as a new version of the named list (content hash as version unless one
  is given) and makes it the active version of that name; the import is trailed.
- ``screening_index`` is the NameIndex over the entries of every active list, entry ids prefixed by
  the list name ("un:17"); its ``version`` names each list version ("un@3f2a..."). It is built once
  per process and rebuilt only when the set of active versions changes.
- ``match_whitelist`` records that a party (by the keyed hash of its name) is not a list entry:
  trailed, with a reason and an expiry; until then screening drops that match (and says so in the
  alert evidence), after it the party matches again.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import threading
from dataclasses import dataclass

from django.db import transaction
from django.utils import timezone

from access.enforcement import check
from audit.services import record
from finance.models import Alert, MatchWhitelist, SanctionsEntry, SanctionsListVersion, name_hash
from finance.screening.names import ListEntry, ListFormatError, NameIndex, list_version, load_list_csv
from finance.services.errors import BatchRejected, FinanceRefused

MAX_WHITELIST_DAYS = 366
_INDEX_LOCK = threading.Lock()
_INDEX_CACHE: dict[tuple, NameIndex] = {}


def sanctions_list_import(
    *, actor, name: str, source, kind: str = SanctionsListVersion.Kind.SANCTIONS, version: str = ""
) -> SanctionsListVersion:
    """Import ``source`` (a path or a file object) as a new active version of list ``name``."""
    name = (name or "").strip().lower()
    if not name or not name.replace("-", "").replace("_", "").isalnum() or len(name) > 64:
        raise FinanceRefused("A list name (letters, digits, - or _) is required, e.g. un or pep-national.")
    if kind not in SanctionsListVersion.Kind.values:
        raise FinanceRefused(f"kind must be one of {', '.join(SanctionsListVersion.Kind.values)}.")
    try:
        entries = load_list_csv(source)
    except ListFormatError as error:
        raise BatchRejected([{"row": r, "field": f, "message": m} for r, f, m in error.row_errors]) from None
    except (OSError, UnicodeDecodeError) as error:
        raise FinanceRefused(f"Cannot read the list file: {error}") from None
    if not entries:
        raise BatchRejected([{"row": 1, "field": "file", "message": "the list has no entries"}])
    digest = hashlib.sha256()
    for e in entries:
        digest.update(f"{e.entry_id}\x1f{e.name}\x1f{e.date_of_birth}\x1f{e.nationality}\x1e".encode())
    version = (version or "").strip() or list_version(entries)
    source_name = str(getattr(source, "name", source))[-255:]
    with transaction.atomic():
        if SanctionsListVersion.objects.filter(name=name, version=version).exists():
            raise FinanceRefused(f"{name}@{version} is already imported; give another --version.")
        previous = list(SanctionsListVersion.objects.filter(name=name, active=True))
        now = timezone.now()
        SanctionsListVersion.objects.filter(pk__in=[p.pk for p in previous]).update(
            active=False, retired_at=now
        )
        row = SanctionsListVersion.objects.create(
            name=name,
            version=version,
            sha256=digest.hexdigest(),
            entries=len(entries),
            kind=kind,
            source=source_name,
            active=True,
        )
        SanctionsEntry.objects.bulk_create(
            [
                SanctionsEntry(
                    list_version=row,
                    entry_id=e.entry_id[:64],
                    name=e.name[:512],
                    date_of_birth=e.date_of_birth[:32],
                    nationality=e.nationality[:64],
                )
                for e in entries
            ],
            batch_size=1000,
        )
        record(
            actor=actor,
            action="sanctions_list.import",
            resource_type="sanctions_list",
            resource_id=f"{name}@{version}",
            outcome="succeeded",
            payload={
                "name": name,
                "kind": kind,
                "version": version,
                "sha256": row.sha256,
                "entries": len(entries),
                "source": source_name,
                "replaces": [p.version for p in previous],
            },
        )
    return row


def active_lists() -> list[SanctionsListVersion]:
    return list(SanctionsListVersion.objects.filter(active=True).order_by("name"))


def _build_index(lists: list[SanctionsListVersion]) -> NameIndex:
    entries = []
    for lst in lists:
        entries += [
            ListEntry(f"{lst.name}:{eid}", nm, dob, nat)
            for eid, nm, dob, nat in SanctionsEntry.objects.filter(list_version=lst)
            .order_by("pk")
            .values_list("entry_id", "name", "date_of_birth", "nationality")
        ]
    return NameIndex.build(entries, version=",".join(lst.label for lst in lists))


def screening_index(lists: list[SanctionsListVersion] | None = None) -> NameIndex | None:
    """The index over every active list (None when no list is active); cached per process."""
    lists = active_lists() if lists is None else lists
    if not lists:
        return None
    key = tuple((lst.pk, lst.sha256) for lst in lists)
    with _INDEX_LOCK:
        index = _INDEX_CACHE.get(key)
        if index is None:
            index = _build_index(lists)
            _INDEX_CACHE.clear()
            _INDEX_CACHE[key] = index
    return index


@dataclass
class WhitelistingIndex:
    """A NameIndex that drops whitelisted (party, entry) matches and remembers which it dropped."""

    index: NameIndex
    whitelist: dict[tuple[str, str], tuple[int, str]]  # (party hash, entry id) -> (id, expires iso)

    def __post_init__(self):
        self.version = self.index.version
        self.dropped: dict[str, list[dict]] = {}  # party name hash -> [{entry_id, whitelist, expires}]

    def match_many(self, names, *, threshold):
        out = []
        for name, matches in zip(names, self.index.match_many(names, threshold=threshold), strict=True):
            hashed = name_hash(name)
            kept = []
            for m in matches:
                wl = self.whitelist.get((hashed, m.entry_id))
                if wl is None:
                    kept.append(m)
                else:
                    self.dropped.setdefault(hashed, []).append(
                        {"entry_id": m.entry_id, "score": m.score, "whitelist": wl[0], "expires_at": wl[1]}
                    )
            out.append(kept)
        return out


def whitelist_in_force(now: dt.datetime | None = None) -> dict[tuple[str, str], tuple[int, str]]:
    now = now or timezone.now()
    return {
        (party, entry): (pk, expires.isoformat())
        for party, entry, pk, expires in MatchWhitelist.objects.filter(expires_at__gt=now).values_list(
            "party_hash", "entry_id", "pk", "expires_at"
        )
    }


def match_whitelist(
    *, actor, alert: Alert, entry_id: str, party: str, reason: str, days: int = 90
) -> MatchWhitelist:
    """Judge the match of ``party`` ("src" or "dst") against ``entry_id`` on ``alert`` false, for
    ``days``: screening drops that match until then. Trailed with the reason and the expiry."""
    if not isinstance(actor, str):
        check(actor, "triage", alert)
    reason = (reason or "").strip()
    if len(reason) < 10:
        raise FinanceRefused("Say why the match is false (at least 10 characters): it goes on the trail.")
    if not isinstance(days, int) or isinstance(days, bool) or not 1 <= days <= MAX_WHITELIST_DAYS:
        raise FinanceRefused(f"days must be a whole number from 1 to {MAX_WHITELIST_DAYS}.")
    matches = (alert.evidence.get("names") or {}).get("matches", [])
    match = next((m for m in matches if m["entry_id"] == entry_id and m.get("party") == party), None)
    if match is None:
        listed = ", ".join(f"{m.get('party')}/{m['entry_id']}" for m in matches) or "none"
        raise FinanceRefused(
            f"Alert {alert.pk} has no match of {party} to {entry_id} (its matches: {listed})."
        )
    expires = timezone.now() + dt.timedelta(days=days)
    with transaction.atomic():
        row = MatchWhitelist.objects.create(
            party_hash=match["party_hash"],
            entry_id=entry_id,
            list_name=entry_id.split(":", 1)[0],
            team=alert.team,
            reason=reason,
            alert=alert,
            created_by=None if isinstance(actor, str) else actor,
            expires_at=expires,
        )
        event = record(
            actor=actor,
            action="sanctions_match.whitelist",
            resource_type="alert",
            resource_id=str(alert.pk),
            outcome="succeeded",
            payload={
                "whitelist": row.pk,
                "party": party,
                "party_hash": match["party_hash"],
                "entry_id": entry_id,
                "entry_name": match["entry_name"],
                "score": match["score"],
                "list_version": alert.evidence["names"].get("list_version"),
                "reason": reason,
                "days": days,
                "expires_at": expires,
            },
        )
        row.trail_event = event.sequence
        row.save(update_fields=["trail_event"])
    return row
