"""inference.serving: the registry rows a completion needs, cached per process under the data itself."""

import pytest
from django.db import connection

from inference import serving
from inference.models import LanguageModel, LoraAdapter, ModelDefault


@pytest.mark.django_db
def test_the_snapshot_is_reused_until_the_registry_changes_by_any_path():
    model = LanguageModel.objects.create(name="snap", path="/models/snap")
    first = serving.serving("snap")
    assert first.model.pk == model.pk and first.adapters == {} and first.model.policy_qa_default is False
    assert serving.serving("snap") is first  # nothing changed: the same rows, no ORM query built

    LanguageModel.objects.filter(pk=model.pk).update(gguf_path="/models/snap.gguf")
    moved = serving.serving("snap")
    assert moved is not first and moved.model.gguf_path == "/models/snap.gguf"

    adapter = LoraAdapter.objects.create(base_model=model, name="a1", path="/a1", status="promoted")
    assert serving.serving("snap").adapter_paths == {"a1": "/a1"}
    ModelDefault.objects.create(purpose="qa", model=model)
    assert serving.serving("snap").model.policy_qa_default is True
    with connection.cursor() as cursor:  # by hand in SQL, as another process or an operator might
        table = LoraAdapter._meta.db_table
        cursor.execute(f"UPDATE {table} SET status = %s WHERE id = %s", ["demoted", adapter.pk])  # noqa: S608
    assert serving.serving("snap").adapters == {}

    LanguageModel.objects.filter(pk=model.pk).update(is_active=False)
    assert serving.serving("snap") is None
