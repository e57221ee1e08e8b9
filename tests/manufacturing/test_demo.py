"""The manufacturing demo step: sites, assets, histories, condition data, a CWRU recording; idempotent."""

from __future__ import annotations

import pytest

from manufacturing.demo import load_demo_manufacturing
from manufacturing.models import ConditionRecord, Machine, VibrationRecording, WorkOrder

pytestmark = pytest.mark.django_db


def test_demo_step_is_idempotent(settings, tmp_path):
    settings.MEDIA_ROOT = tmp_path
    said: list[str] = []
    load_demo_manufacturing(said.append)
    counts = (Machine.objects.count(), WorkOrder.objects.count(), ConditionRecord.objects.count())
    assert counts[0] == 4 and counts[1] > 9000 and counts[2] == 192
    recording = VibrationRecording.objects.get()
    assert recording.file.size > 900_000 and recording.status in ("done", "failed")
    load_demo_manufacturing(said.append)
    assert (Machine.objects.count(), WorkOrder.objects.count(), ConditionRecord.objects.count()) == counts
    assert VibrationRecording.objects.count() == 1
    assert set(Machine.objects.values_list("site", flat=True)) == {"site-a", "site-b"}
