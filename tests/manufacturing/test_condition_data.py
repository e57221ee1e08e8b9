"""import_condition_data on the shared C-MAPSS FD001 training file, and its all-or-nothing refusal."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from audit.models import Event
from manufacturing.models import ConditionRecord

pytestmark = pytest.mark.django_db


def test_imports_cmapss_units(machine_a, capsys):
    call_command("import_condition_data", "--machine", machine_a.tag, "--units", "1,2")
    records = ConditionRecord.objects.filter(machine=machine_a)
    assert set(records.values_list("unit", flat=True)) == {1, 2}
    first = records.get(unit=1, cycle=1)
    assert len(first.settings) == 3 and len(first.sensors) == 21
    assert records.filter(unit=1).count() == 192  # FD001 engine 1 ran 192 cycles
    call_command("import_condition_data", "--machine", machine_a.tag, "--units", "1")
    assert records.filter(unit=1).count() == 192
    assert Event.objects.filter(action="condition.import").count() == 2


def test_a_bad_row_imports_nothing(machine_a, tmp_path):
    bad = tmp_path / "bad.txt"
    bad.write_text("1 1 " + " ".join(["0.5"] * 24) + "\n1 2 0.1\n", encoding="utf-8")
    with pytest.raises(CommandError, match="row 2: 3 columns"):
        call_command("import_condition_data", "--machine", machine_a.tag, "--file", str(bad))
    assert not ConditionRecord.objects.exists()
    with pytest.raises(CommandError, match="0 machines"):
        call_command("import_condition_data", "--machine", "NOPE")
