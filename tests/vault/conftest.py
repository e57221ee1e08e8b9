import os
import subprocess
import uuid
from pathlib import Path

import pytest

from vault.keys import get_key_provider
from vault.pkcs11 import DEFAULT_MODULE, Pkcs11KeyProvider

PIN = "4711-test"


@pytest.fixture(autouse=True)
def private_keys(settings, tmp_path):
    """Each test gets its own key directory: keys are created fresh, and never leak between tests."""
    settings.VAULT_KEY_DIR = tmp_path / "keys"
    return settings.VAULT_KEY_DIR


@pytest.fixture(scope="session")
def softhsm_token():
    """One token per test run: SoftHSM reads SOFTHSM2_CONF once per process, at C_Initialize."""
    if not Path(DEFAULT_MODULE).exists():
        pytest.fail("SoftHSM2 is not installed: run scripts/system-deps.sh (Debian package softhsm2).")
    root = Path(os.environ["SUITE_TEST_RUN_DIR"]) / "softhsm"
    (root / "tokens").mkdir(parents=True, exist_ok=True)
    conf = root / "softhsm2.conf"
    conf.write_text(
        f"directories.tokendir = {root / 'tokens'}\nobjectstore.backend = file\nlog.level = ERROR\n"
    )
    os.environ["SOFTHSM2_CONF"] = str(conf)
    label = f"suite-{uuid.uuid4().hex[:8]}"
    # A second token nobody logs in to, created now, before this process initialises the library
    # (SoftHSM reads its token folder at C_Initialize): a PKCS#11 login is per process and token,
    # so a wrong PIN is only refused by a token this process has not logged in to yet.
    for token in (label, f"{label}-fresh"):
        subprocess.run(
            ["softhsm2-util", "--init-token", "--free", "--label", token, "--pin", PIN, "--so-pin", "so-" + PIN],
            check=True, capture_output=True, env=os.environ,
        )  # fmt: skip
    return label


@pytest.fixture
def hsm(settings, softhsm_token):
    settings.VAULT_KEY_PROVIDER = "vault.pkcs11.Pkcs11KeyProvider"
    settings.VAULT_PKCS11_TOKEN_LABEL = softhsm_token
    settings.VAULT_PKCS11_PIN = PIN
    provider = get_key_provider()
    assert isinstance(provider, Pkcs11KeyProvider)
    return provider
