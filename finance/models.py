"""AML records: customers, accounts, transactions, scenario versions, alerts, cases, SARs.

Names of persons are sealed by the vault (`name_sealed`) with a keyed hash (`name_hash`) for search.
"""

from __future__ import annotations

import hashlib
import hmac

from django.conf import settings
from django.db import models


def name_hash(name: str) -> str:
    """Keyed hash of a normalised name, for exact search without decrypting."""
    key = settings.SECRET_KEY.encode("utf-8")
    norm = " ".join(name.casefold().split()).encode("utf-8")
    return hmac.new(key, b"finance.name|" + norm, hashlib.sha256).hexdigest()


class Customer(models.Model):  # noqa: DJ008
    class Kind(models.TextChoices):
        PERSON = "person", "Person"
        COMPANY = "company", "Company"

    bank = models.SlugField(max_length=64)
    ref = models.CharField(max_length=64)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.PERSON)
    country = models.CharField(max_length=2, blank=True)
    kyc_risk = models.CharField(max_length=8, default="low")
    pep = models.BooleanField(default=False)
    name_sealed = models.BinaryField(blank=True, default=b"")
    name_hash = models.CharField(max_length=64, blank=True, db_index=True)
    # a national id, passport or company registration number, sealed like the name
    identifier_sealed = models.BinaryField(blank=True, default=b"")
    identifier_hash = models.CharField(max_length=64, blank=True, db_index=True)
    date_of_birth_sealed = models.BinaryField(blank=True, default=b"")
    onboarded = models.DateField(null=True, blank=True)
    team = models.SlugField(max_length=64, blank=True, db_index=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bank", "ref"], name="finance_customer_unique")]


class Account(models.Model):  # noqa: DJ008
    class Status(models.TextChoices):
        ACTIVE = "active", "Active"
        DORMANT = "dormant", "Dormant"
        CLOSED = "closed", "Closed"

    bank = models.CharField(max_length=64)
    number = models.CharField(max_length=64)
    customer = models.ForeignKey(Customer, null=True, blank=True, on_delete=models.SET_NULL)
    country = models.CharField(max_length=2, blank=True)
    currency = models.CharField(max_length=32, blank=True)
    opened = models.DateField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["bank", "number"], name="finance_account_unique")]


class Counterparty(models.Model):  # noqa: DJ008
    """A party named on a transaction (originator or beneficiary): its account and its sealed name.
    One row per (bank, account, name): the same account may be named differently over time."""

    bank = models.CharField(max_length=64)
    number = models.CharField(max_length=64)
    name_sealed = models.BinaryField(blank=True, default=b"")
    name_hash = models.CharField(max_length=64, blank=True, db_index=True)
    country = models.CharField(max_length=2, blank=True)
    first_seen = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["bank", "number", "name_hash"], name="finance_counterparty_unique"
            )
        ]


class Transaction(models.Model):  # noqa: DJ008
    policy_resource_type = "transaction"
    policy_field_map = {"department": "team"}

    # tx_ref, the accounts and the team are indexed in Meta.indexes: a plain B-tree on every
    # database (db_index=True adds a second, LIKE-pattern index on PostgreSQL that no query uses
    # and every insert pays for)
    tx_ref = models.CharField(max_length=64)
    ts = models.DateTimeField(db_index=True)
    src_account = models.CharField(max_length=64)
    dst_account = models.CharField(max_length=64)
    src_bank = models.CharField(max_length=64)
    dst_bank = models.CharField(max_length=64)
    amount_paid = models.FloatField()
    amount_received = models.FloatField()
    currency_paid = models.CharField(max_length=32)
    currency_received = models.CharField(max_length=32)
    payment_format = models.CharField(max_length=32)
    src_country = models.CharField(max_length=2, blank=True)
    dst_country = models.CharField(max_length=2, blank=True)
    label = models.SmallIntegerField(null=True, blank=True)
    batch = models.CharField(max_length=64, blank=True)
    team = models.SlugField(max_length=64, blank=True, db_index=False)
    decision = models.CharField(max_length=8, blank=True)  # approve / review / hold
    risk = models.FloatField(default=0.0)
    # the named parties (1% of the rows in a typical feed): not indexed. No query looks transactions
    # up by counterparty (the case page reads a transaction's parties through these columns), and
    # counterparties are never deleted; the two indexes cost every insert (measured on SQLite, 300,000
    # rows with the table's other indexes: 10.1 -> 8.4 CPU-microseconds per row without them)
    originator = models.ForeignKey(
        Counterparty, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )
    beneficiary = models.ForeignKey(
        Counterparty, null=True, blank=True, on_delete=models.PROTECT, related_name="+", db_index=False
    )

    class Meta:
        indexes = [
            models.Index(fields=["tx_ref"], name="finance_tx_tx_ref"),
            models.Index(fields=["src_account"], name="finance_tx_src_account"),
            models.Index(fields=["dst_account"], name="finance_tx_dst_account"),
            models.Index(fields=["team"], name="finance_tx_team"),
        ]

    def policy_name(self) -> str:
        return str(self.pk)

    def policy_attributes(self) -> dict:
        return {"department": self.team}


class ScenarioVersion(models.Model):  # noqa: DJ008
    code = models.CharField(max_length=64)
    version = models.PositiveIntegerField()
    params = models.JSONField(default=dict)
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    note = models.TextField(blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    policy_resource_type = "scenario"

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["code", "version"], name="finance_scenario_version_unique")
        ]

    def policy_name(self) -> str:
        return self.code

    @property
    def label(self) -> str:
        return f"{self.code} v{self.version}"


class SanctionsListVersion(models.Model):  # noqa: DJ008
    """One imported version of a sanctions or PEP list; the active version of each name screens."""

    class Kind(models.TextChoices):
        SANCTIONS = "sanctions", "Sanctions"
        PEP = "pep", "Politically exposed persons"

    name = models.CharField(max_length=128)
    version = models.CharField(max_length=64)
    sha256 = models.CharField(max_length=64)
    entries = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)
    kind = models.CharField(max_length=16, choices=Kind.choices, default=Kind.SANCTIONS)
    source = models.CharField(max_length=255, blank=True)
    active = models.BooleanField(default=False)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["name", "version"], name="finance_sanctions_list_version_unique")
        ]

    @property
    def label(self) -> str:
        return f"{self.name}@{self.version}"


class SanctionsEntry(models.Model):  # noqa: DJ008
    """A list entry as published (public data: not sealed)."""

    list_version = models.ForeignKey(SanctionsListVersion, on_delete=models.CASCADE, related_name="rows")
    entry_id = models.CharField(max_length=64)
    name = models.CharField(max_length=512)
    date_of_birth = models.CharField(max_length=32, blank=True)
    nationality = models.CharField(max_length=64, blank=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["list_version", "entry_id"], name="finance_sanctions_entry_unique"
            )
        ]


class MatchWhitelist(models.Model):  # noqa: DJ008
    """A name match judged false: the party (by keyed name hash) no longer matches the entry until
    ``expires_at``. Written (and trailed) by finance.services.sanctions.match_whitelist."""

    party_hash = models.CharField(max_length=64, db_index=True)
    entry_id = models.CharField(max_length=160)  # "<list name>:<entry id>" as in the alert evidence
    list_name = models.CharField(max_length=128)
    team = models.SlugField(max_length=64)
    reason = models.TextField()
    alert = models.ForeignKey("Alert", null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    created_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField(db_index=True)
    trail_event = models.PositiveBigIntegerField(null=True, blank=True)


class ModelVersion(models.Model):  # noqa: DJ008
    version = models.CharField(max_length=64, unique=True)
    blob = models.BinaryField()
    metrics = models.JSONField(default=dict)
    active = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)


class Case(models.Model):  # noqa: DJ008
    class Status(models.TextChoices):
        OPEN = "open", "Open"
        ESCALATED = "escalated", "Escalated"
        PENDING_CLOSE = "pending_close", "Closing awaits approval"
        CLOSED = "closed", "Closed"

    class Disposition(models.TextChoices):
        FALSE_POSITIVE = "false_positive", "False positive"
        SAR_FILED = "sar_filed", "SAR filed"
        NO_SAR = "no_sar", "No SAR"

    policy_resource_type = "case"
    policy_field_map = {"department": "team"}

    team = models.SlugField(max_length=64)
    region = models.CharField(max_length=32, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.OPEN)
    assignee = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    disposition = models.CharField(max_length=32, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    account = models.CharField(max_length=64, blank=True, db_index=True)
    disposition_reason = models.TextField(blank=True)
    closing_prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    closed_at = models.DateTimeField(null=True, blank=True)

    def policy_name(self) -> str:
        return str(self.pk)

    def policy_attributes(self) -> dict:
        return {"department": self.team}


class Alert(models.Model):  # noqa: DJ008
    class Status(models.TextChoices):
        NEW = "new", "New"
        ASSIGNED = "assigned", "Assigned"
        CLOSED = "closed", "Closed"

    policy_resource_type = "alert"
    policy_field_map = {"department": "team"}

    transaction = models.ForeignKey(Transaction, on_delete=models.CASCADE)
    case = models.ForeignKey(Case, null=True, blank=True, on_delete=models.SET_NULL, related_name="alerts")
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    scenario_versions = models.ManyToManyField(ScenarioVersion, blank=True, related_name="alerts")
    trail_event = models.PositiveBigIntegerField(null=True, blank=True)  # sequence of its trail event
    team = models.SlugField(max_length=64)
    risk = models.FloatField(db_index=True)
    decision = models.CharField(max_length=8)  # approve / review / hold
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.NEW)
    evidence = models.JSONField(default=dict)
    created_at = models.DateTimeField(auto_now_add=True, db_index=True)

    def policy_name(self) -> str:
        return str(self.pk)

    def policy_attributes(self) -> dict:
        return {"department": self.team}


class Note(models.Model):  # noqa: DJ008
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="notes")
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    text = models.TextField()
    submission_key = models.CharField(
        max_length=64,
        blank=True,
        help_text="The form's or API client's key: the same note sent twice is kept once.",
    )
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(
                fields=["author", "submission_key"],
                condition=~models.Q(submission_key=""),
                name="finance_note_submitted_once",
            )
        ]


class Attachment(models.Model):  # noqa: DJ008
    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="attachments")
    filename = models.CharField(max_length=255)
    sealed = models.BinaryField()
    author = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL)
    sha256 = models.CharField(max_length=64, blank=True)
    size = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)


class SAR(models.Model):  # noqa: DJ008
    class Status(models.TextChoices):
        DRAFT = "draft", "Draft"
        APPROVED = "approved", "Approved"

    policy_resource_type = "sar"
    policy_field_map = {"department": "case__team"}

    case = models.ForeignKey(Case, on_delete=models.CASCADE, related_name="sars")
    text = models.TextField(blank=True)
    facts = models.JSONField(default=dict)  # the structured facts the draft rests on
    verification = models.JSONField(default=dict)  # per-sentence citations and number checks
    editors = models.JSONField(default=list)  # usernames of everyone who prepared or edited it
    model_name = models.CharField(max_length=128, blank=True)
    approved_at = models.DateTimeField(null=True, blank=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.DRAFT)
    prepared_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, on_delete=models.SET_NULL, related_name="+"
    )
    approved_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    created_at = models.DateTimeField(auto_now_add=True)

    def policy_name(self) -> str:
        return str(self.pk)

    def policy_attributes(self) -> dict:
        return {"department": self.case.team}
