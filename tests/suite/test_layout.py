import configparser
import importlib
import sys
from pathlib import Path

from django.apps import apps

ROOT = Path(__file__).resolve().parents[2]


def test_platform_is_the_standard_library_module():
    import platform

    assert platform.system()  # a real call into the standard-library module
    assert Path(platform.__file__).parent == Path(importlib.import_module("os").__file__).parent
    assert not (ROOT / "platform" / "__init__.py").exists()


def test_platform_source_root_comes_after_the_standard_library():
    """manage.py (and so every command, the worker and the web server) appends platform/."""
    from tests.support import manage

    script = (
        "import sys, os, platform; "
        "print(sys.path.index(os.path.dirname(os.__file__))); "
        f"print(sys.path.index({str(ROOT / 'platform')!r})); "
        "print(platform.__file__)"
    )
    result = manage("shell", "--no-imports", "-c", script, timeout=60)
    assert result.returncode == 0, result.stderr
    stdlib_index, platform_index, platform_file = result.stdout.split()
    assert int(platform_index) > int(stdlib_index)
    assert not platform_file.startswith(str(ROOT))


def test_every_layer_is_a_django_app():
    labels = {config.label: config.name for config in apps.get_app_configs()}
    expected = {
        "accounts": "accounts",
        "access": "access",
        "audit": "audit",
        "vault": "vault",
        "portal": "portal",
        "inference": "inference",
        "tuning": "inference.tuning",
        "medical": "medical",
        "finance": "finance",
        "manufacturing": "manufacturing",
    }
    for label, name in expected.items():
        assert labels.get(label) == name, f"app {label} missing or misnamed"


def test_no_app_takes_a_standard_library_name():
    stdlib = set(sys.stdlib_module_names)
    for config in apps.get_app_configs():
        assert config.name.split(".")[0] not in stdlib or config.name.startswith("django"), config.name


HEAVY = ("torch", "transformers", "peft", "opacus", "tenseal", "llama_cpp", "sentence_transformers")


def test_start_up_imports_no_heavy_library():
    """Django start-up, the URL tree (every view module) and the Celery task modules load without
    torch, transformers, peft, opacus, tenseal or llama.cpp: those load lazily where used, so
    `manage.py check`, the web server and the worker start fast."""
    from tests.support import manage

    script = (
        "import sys; from django.urls import get_resolver; get_resolver().url_patterns; "
        "from celery import current_app; current_app.loader.import_default_modules(); "
        f"print(' '.join(sorted(name for name in {HEAVY!r} if name in sys.modules)) or '-')"
    )
    result = manage("shell", "--no-imports", "-c", script, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split()[-1] == "-", f"imported at start-up: {result.stdout.split()[-1]}"


def test_the_facade_contract_forbids_every_inference_module_but_the_facade():
    """A module added to inference is the layer's own business until someone decides otherwise: the
    contract must name it, or the industry apps could import it unnoticed."""
    config = configparser.ConfigParser()
    config.read(ROOT / ".importlinter")
    forbidden = set(config["importlinter:contract:inference-facade"]["forbidden_modules"].split())
    modules = {
        f"inference.{path.stem}"
        for path in (ROOT / "inference").iterdir()
        if (path.suffix == ".py" and path.stem != "__init__")
        or (path.is_dir() and (path / "__init__.py").exists() and path.name != "migrations")
    }
    assert modules - forbidden == {"inference.services", "inference.datasets"}
    assert forbidden <= modules, f"the contract names modules that do not exist: {forbidden - modules}"
