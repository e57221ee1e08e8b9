"""Customers, accounts and counterparties: names and identifiers of persons sealed at rest.

A name or identifier is stored only as a vault envelope (``platform/vault``: AES-256-GCM under a
KEK of the key provider, a local key file or an HSM) plus a keyed hash (HMAC-SHA256 of the
normalised text, ``finance.models.name_hash``) for exact search without decrypting. The sealed
blob is bound to its column (the vault context), so a blob copied into another column does not
open. Nothing else keeps the plaintext: the transaction row points to its counterparties, and
an alert's trail event seals the names its matches rest on (finance.services.persist).
"""

from __future__ import annotations

import datetime as dt

from django.db import connection, transaction
from django.utils import timezone

from audit.services import record
from finance.models import Account, Counterparty, Customer, name_hash
from finance.screening.table import TxTable
from finance.services.bulk import bulk_insert
from finance.services.errors import FinanceRefused
from vault.envelope import open_sealed, seal, seal_many

NAME_CONTEXT = b"finance.party.name"
IDENTIFIER_CONTEXT = b"finance.party.identifier"
DOB_CONTEXT = b"finance.party.date_of_birth"
KYC_RISKS = ("low", "medium", "high")


def seal_text(text: str, context: bytes) -> bytes:
    return seal(text.encode("utf-8"), context=context)


def open_text(blob, context: bytes) -> str:
    return open_sealed(bytes(blob), context=context).decode("utf-8") if blob else ""


def customer_name(customer: Customer) -> str:
    return open_text(customer.name_sealed, NAME_CONTEXT)


def counterparty_name(party: Counterparty) -> str:
    return open_text(party.name_sealed, NAME_CONTEXT)


def customer_upsert(
    *,
    actor,
    bank: str,
    ref: str,
    name: str,
    kind: str = Customer.Kind.PERSON,
    country: str = "",
    kyc_risk: str = "low",
    pep: bool = False,
    identifier: str = "",
    date_of_birth: str = "",
    team: str = "",
    accounts: list[dict] | None = None,
) -> Customer:
    """Create or update a KYC customer and its accounts; name, identifier and birth date sealed."""
    name = " ".join((name or "").split())
    if not bank or not ref or not name:
        raise FinanceRefused("bank, ref and name are required for a customer.")
    if kyc_risk not in KYC_RISKS:
        raise FinanceRefused(f"kyc_risk must be one of {', '.join(KYC_RISKS)}.")
    if kind not in Customer.Kind.values:
        raise FinanceRefused(f"kind must be one of {', '.join(Customer.Kind.values)}.")
    with transaction.atomic():
        customer, created = Customer.objects.update_or_create(
            bank=bank,
            ref=ref,
            defaults={
                "kind": kind,
                "country": (country or "").upper()[:2],
                "kyc_risk": kyc_risk,
                "pep": bool(pep),
                "team": team,
                "name_sealed": seal_text(name, NAME_CONTEXT),
                "name_hash": name_hash(name),
                "identifier_sealed": seal_text(identifier, IDENTIFIER_CONTEXT) if identifier else b"",
                "identifier_hash": name_hash(identifier) if identifier else "",
                "date_of_birth_sealed": seal_text(date_of_birth, DOB_CONTEXT) if date_of_birth else b"",
                "onboarded": timezone.now().date(),
            },
        )
        for spec in accounts or []:
            Account.objects.update_or_create(
                bank=bank,
                number=str(spec["number"]),
                defaults={
                    "customer": customer,
                    "country": (spec.get("country") or country or "").upper()[:2],
                    "currency": spec.get("currency", ""),
                    "opened": spec.get("opened"),
                    "status": spec.get("status", Account.Status.ACTIVE),
                },
            )
        record(
            actor=actor,
            action="customer.create" if created else "customer.update",
            resource_type="customer",
            resource_id=str(customer.pk),
            outcome="succeeded",
            # the keyed hashes only: the trail never holds a person's name or identifier
            payload={
                "bank": bank,
                "ref": ref,
                "kind": kind,
                "country": customer.country,
                "kyc_risk": kyc_risk,
                "pep": bool(pep),
                "name_hash": customer.name_hash,
                "identifier_hash": customer.identifier_hash,
                "accounts": [str(a["number"]) for a in accounts or []],
            },
        )
    return customer


def customers_by_name(name: str):
    """Customers whose name is exactly ``name`` (after case and space folding), by keyed hash."""
    return Customer.objects.filter(name_hash=name_hash(name))


def counterparties_by_name(name: str):
    return Counterparty.objects.filter(name_hash=name_hash(name))


def parties_store(*, table, parties: dict[str, dict]) -> dict[str, tuple[int | None, int | None]]:
    """Seal the originator and beneficiary names of a batch into Counterparty rows (one per bank,
    account and name; existing ones reused) and create the accounts seen for the first time.

    ``parties``: {tx_ref: {"src": name, "dst": name}}. Returns {tx_ref: (originator id,
    beneficiary id)}. Runs inside the ingest transaction."""
    wanted: dict[tuple[str, str, str], tuple[str, str, dt.datetime]] = {}
    index = {str(ref): i for i, ref in enumerate(table.tx_ref.tolist())}
    per_tx: dict[str, list] = {}
    for ref, names in parties.items():
        i = index.get(ref)
        if i is None:
            continue
        keys = []
        for side, bank_col, acc_col, country_col in (
            ("src", table.src_bank, table.src_account, table.src_country),
            ("dst", table.dst_bank, table.dst_account, table.dst_country),
        ):
            name = " ".join((names.get(side) or "").split())
            if not name:
                keys.append(None)
                continue
            key = (str(bank_col[i]), str(acc_col[i]), name_hash(name))
            seen = dt.datetime.fromtimestamp(int(table.ts[i]), tz=dt.UTC)
            wanted.setdefault(key, (name, str(country_col[i]), seen))
            keys.append(key)
        per_tx[ref] = keys
    ids: dict[tuple[str, str, str], int] = {}
    if wanted:
        hashes = sorted({k[2] for k in wanted})
        for bank, number, hashed, pk in Counterparty.objects.filter(name_hash__in=hashes).values_list(
            "bank", "number", "name_hash", "pk"
        ):
            ids[(bank, number, hashed)] = pk
        missing = [(key, value) for key, value in wanted.items() if key not in ids]
        sealed = seal_many([name.encode("utf-8") for _, (name, _, _) in missing], context=NAME_CONTEXT)
        adapt_time = connection.ops.adapt_datetimefield_value
        new_ids = bulk_insert(
            Counterparty,
            ("bank", "number", "name_hash", "name_sealed", "country", "first_seen"),
            [
                (key[0], key[1], key[2], blob, country, adapt_time(seen))
                for (key, (_, country, seen)), blob in zip(missing, sealed, strict=True)
            ],
        )
        for (key, _), pk in zip(missing, new_ids, strict=True):
            ids[key] = pk
    accounts = set(zip(table.src_bank.tolist(), table.src_account.tolist(), strict=True)) | set(
        zip(table.dst_bank.tolist(), table.dst_account.tolist(), strict=True)
    )
    if len(accounts) <= 20_000:  # a first sight of an account opens its row (large imports: on demand)
        Account.objects.bulk_create(
            [Account(bank=b, number=n) for b, n in sorted(accounts)], batch_size=1000, ignore_conflicts=True
        )
    return {
        ref: tuple(ids.get(k) if k is not None else None for k in keys)  # type: ignore[misc]
        for ref, keys in per_tx.items()
    }


def with_customer_names(
    table: TxTable, parties: dict[str, dict], *, customers: bool = True
) -> dict[str, dict]:
    """``parties`` completed with the KYC name of each side's customer where the row names none
    (unsealed here for screening only, once per account). ``customers`` False: no account has a
    customer (read with the configuration), nothing to look up."""
    if not customers:  # no KYC customers on file (a feed of payments alone)
        return parties
    with_customer = Account.objects.filter(customer__isnull=False)
    pairs = set(zip(table.src_bank.tolist(), table.src_account.tolist(), strict=True))
    pairs |= set(zip(table.dst_bank.tolist(), table.dst_account.tolist(), strict=True))
    numbers = sorted({n for _, n in pairs})
    known: dict[tuple[str, str], str] = {}
    # a large batch: one pass over the accounts that have a customer (compiling IN lists of
    # thousands of numbers cost more than the scan)
    parts = [numbers[start : start + 4000] for start in range(0, len(numbers), 4000)]
    queries = (
        [with_customer.filter(number__in=part) for part in parts] if len(parts) <= 2 else [with_customer]
    )
    for query in queries:
        for bank, number, sealed in query.values_list("bank", "number", "customer__name_sealed"):
            if (bank, number) in pairs and sealed:
                known[(bank, number)] = open_text(sealed, NAME_CONTEXT)
    if not known:
        return parties
    merged = dict(parties)
    for ref, sb, sa, db, da in zip(
        table.tx_ref.tolist(),
        table.src_bank.tolist(),
        table.src_account.tolist(),
        table.dst_bank.tolist(),
        table.dst_account.tolist(),
        strict=True,
    ):
        src, dst = known.get((sb, sa), ""), known.get((db, da), "")
        if src or dst:
            given = parties.get(ref, {})
            merged[ref] = {"src": given.get("src") or src, "dst": given.get("dst") or dst}
    return merged
