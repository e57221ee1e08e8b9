import datetime as dt

import pytest

from finance.models import Alert, Case, Customer, Transaction, name_hash
from vault.envelope import open_sealed, seal

pytestmark = pytest.mark.django_db


def test_customer_name_sealed_and_searchable_by_keyed_hash():
    c = Customer.objects.create(
        bank="demo",
        ref="C1",
        name_sealed=seal(b"Ada Lovelace", context=b"finance.customer"),
        name_hash=name_hash("Ada Lovelace"),
    )
    found = Customer.objects.get(name_hash=name_hash("  ada   LOVELACE "))
    assert found.pk == c.pk
    assert b"Ada" not in bytes(found.name_sealed)
    assert open_sealed(bytes(found.name_sealed), context=b"finance.customer") == b"Ada Lovelace"


def test_alert_links_transaction_and_case():
    tx = Transaction.objects.create(
        tx_ref="T1",
        ts=dt.datetime(2024, 1, 1, tzinfo=dt.UTC),
        src_account="A",
        dst_account="B",
        src_bank="1",
        dst_bank="2",
        amount_paid=10.0,
        amount_received=10.0,
        currency_paid="USD",
        currency_received="USD",
        payment_format="Wire",
    )
    case = Case.objects.create(team="aml-eu")
    alert = Alert.objects.create(transaction=tx, case=case, team="aml-eu", risk=0.9, decision="hold")
    assert list(case.alerts.all()) == [alert]
