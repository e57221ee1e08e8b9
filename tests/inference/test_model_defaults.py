"""Defaults with a LoRA adapter: only a promoted adapter of the model may be a default, a demoted
one stops being served (the base answers), and every change is trailed with the adapter."""

from __future__ import annotations

import pytest

from accounts.roles import Role
from audit.models import Event
from inference import registry, services
from inference.models import LanguageModel, LoraAdapter

pytestmark = pytest.mark.django_db


@pytest.fixture
def engineer(make_user):
    return make_user(Role.ML_ENGINEER)


@pytest.fixture
def base(tmp_path):
    return LanguageModel.objects.create(name="qa-base", backend="local", path=str(tmp_path))


def test_a_promoted_adapter_can_be_the_qa_default_until_it_is_demoted(engineer, base, tmp_path):
    adapter = registry.adapter_register(
        base_model=base, name="dicom", path=str(tmp_path / "dicom"), source="test", evaluation={}
    )
    with pytest.raises(services.RegistrationRefused, match="promote it first"):
        services.model_default_set(actor=engineer, purpose="qa", model=base, adapter=adapter)
    assert services.default_target("qa") is None

    adapter = registry.adapter_set_status(actor=engineer, adapter=adapter, status=LoraAdapter.Status.PROMOTED)
    services.model_default_set(actor=engineer, purpose="qa", model=base, adapter=adapter)
    target = services.default_target("qa")
    assert (target.model.id, target.adapter.id, target.public_name) == (base.pk, adapter.pk, "qa-base:dicom")
    event = Event.objects.filter(action="model.default_set").get()
    assert event.payload["adapter"] == "dicom" and event.payload["adapter_id"] == adapter.pk

    registry.adapter_set_status(actor=engineer, adapter=adapter, status=LoraAdapter.Status.DEMOTED)
    assert services.default_target("qa").adapter is None  # the base answers; nothing demoted is served
    with pytest.raises(services.RegistrationRefused, match="without an adapter"):
        services.model_default_set(actor=engineer, purpose="lora_base", model=base, adapter=adapter)


def test_an_adapter_of_another_model_is_refused(engineer, base, tmp_path):
    other = LanguageModel.objects.create(name="other", backend="local", path=str(tmp_path))
    adapter = registry.adapter_register(
        base_model=other, name="x", path=str(tmp_path / "x"), source="test", evaluation={}
    )
    adapter = registry.adapter_set_status(actor=engineer, adapter=adapter, status=LoraAdapter.Status.PROMOTED)
    with pytest.raises(services.RegistrationRefused, match="not a promoted adapter of qa-base"):
        services.model_default_set(actor=engineer, purpose="qa", model=base, adapter=adapter)
    assert not Event.objects.filter(action="model.default_set").exists()


def test_clinicians_may_use_exactly_the_qa_default(engineer, base, make_user, tmp_path):
    """decide() reads the model's qa_default attribute, restrict() its generated column: they agree."""
    from access.decisions import decide
    from access.querysets import restrict

    clinician = make_user(Role.CLINICIAN, department="radiology")
    chat = LanguageModel.objects.create(name="chat-only", backend="local", path=str(tmp_path))
    services.model_default_set(actor=engineer, purpose="chat", model=chat)

    def usable():
        listed = set(
            restrict(LanguageModel.objects.all(), clinician, "predict").values_list("name", flat=True)
        )
        decided = {m.name for m in LanguageModel.objects.all() if decide(clinician, "predict", m).allowed}
        assert listed == decided
        return listed

    assert usable() == set()
    services.model_default_set(actor=engineer, purpose="qa", model=base)
    assert usable() == {"qa-base"} and base.policy_attributes()["qa_default"] == "yes"
    services.model_default_set(actor=engineer, purpose="qa", model=chat)
    assert usable() == {"chat-only"}
    assert not decide(clinician, "predict", "model:chat-only").allowed  # a bare name has no attributes
