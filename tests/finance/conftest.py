"""Fixtures for the finance tests: officers of two AML teams, a second officer, an auditor, crafted rows."""

from __future__ import annotations

import pytest

TEAM, OTHER_TEAM = "aml-eu", "aml-us"


@pytest.fixture(autouse=True)
def fast_password_hashing(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def officer(make_user):
    return make_user("compliance_officer", department=TEAM)


@pytest.fixture
def officer2(make_user):
    return make_user("compliance_officer", department=TEAM)


@pytest.fixture
def officer_us(make_user):
    return make_user("compliance_officer", department=OTHER_TEAM)


@pytest.fixture
def auditor(make_user):
    return make_user("auditor")


def payment(ref: str, ts: int, src: str, dst: str, amount: float) -> dict:
    """One USD payment row as the batch API takes it."""
    return {
        "tx_ref": ref,
        "ts": ts,
        "src_account": src,
        "dst_account": dst,
        "amount_paid": amount,
        "currency_paid": "USD",
    }


def structuring_rows(prefix: str = "S", account: str = "ACC-1", start: int = 1_700_000_000) -> list[dict]:
    """Three payments of 9,500 USD from one account within hours (structuring under 10,000 USD) and
    one ordinary payment."""
    rows = [
        {
            "tx_ref": f"{prefix}{i}",
            "ts": start + i * 3600,
            "src_account": account,
            "dst_account": f"{prefix}-DST{i}",
            "amount_paid": 9500.0,
            "currency_paid": "USD",
            "payment_format": "Wire",
            "src_country": "DE",
            "dst_country": "FR",
        }
        for i in range(3)
    ]
    rows.append(
        {
            "tx_ref": f"{prefix}-ok",
            "ts": start + 5 * 3600,
            "src_account": f"{prefix}-OTHER",
            "dst_account": f"{prefix}-DST9",
            "amount_paid": 120.5,
            "currency_paid": "USD",
        }
    )
    return rows


@pytest.fixture
def screened(officer):
    """A committed batch with one structuring alert (on row 2) in a case of team aml-eu."""
    from finance import services

    result = services.transactions_ingest(
        actor=officer, table=services.rows_validate(structuring_rows()), team=TEAM
    )
    return result
