"""import_work_orders on the real shared histories (chiller and excavator), and its all-or-nothing refusal."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from audit.models import Event
from manufacturing.models import FailureCode, WorkOrder

pytestmark = pytest.mark.django_db


def test_imports_the_shared_histories_once(capsys):
    call_command("import_work_orders", "--site", "site-a")
    out = capsys.readouterr().out
    chiller = WorkOrder.objects.filter(external_id__startswith="WO").count()
    excavator = WorkOrder.objects.filter(external_id__startswith="EXC-").count()
    assert chiller > 4000 and excavator > 5000, out
    assert FailureCode.objects.filter(kind="mode").count() == 143 + 22
    assert FailureCode.objects.get(kind="mode", code="VIB").category == "ISO 14224 failure mode"
    assert set(WorkOrder.objects.values_list("status", flat=True)) == {"complete"}
    assert set(WorkOrder.objects.values_list("site", flat=True)) == {"site-a"}
    sample = WorkOrder.objects.get(external_id="WO259747")
    assert sample.preventive and sample.failure_mode == "MT010b" and sample.downtime_hours == 3.0
    assert Event.objects.filter(action="work_order.import", outcome="succeeded").count() == 2
    total = WorkOrder.objects.count()
    call_command("import_work_orders", "--site", "site-a")
    assert WorkOrder.objects.count() == total
    assert "already present" in capsys.readouterr().out


def test_a_bad_row_imports_nothing(tmp_path):
    bad = tmp_path / "chiller.csv"
    bad.write_text(
        "wo_id,wo_description,collection,primary_code,primary_code_description,secondary_code,"
        "secondary_code_description,equipment_id,equipment_name,preventive,work_priority,actual_finish,"
        "duration,actual_labor_hours\n"
        "WO1,Fix,c,M001,Cracking,M001a,Cracking in Piping,CWC1,Chiller 1,FALSE,2,4/6/16 14:00,3:00,1:00\n"
        "WO2,Fix,c,M001,Cracking,M001a,Cracking in Piping,CWC1,Chiller 1,FALSE,2,not a date,3:00,1:00\n",
        encoding="utf-8",
    )
    with pytest.raises(CommandError, match="nothing imported; row 3"):
        call_command("import_work_orders", "--chiller", str(bad), "--excavator", "")
    assert WorkOrder.objects.count() == 0
