import pytest


@pytest.fixture(autouse=True)
def private_keys(settings, tmp_path):
    """Each test gets its own key directory: keys are created fresh, and never leak between tests."""
    settings.VAULT_KEY_DIR = tmp_path / "keys"
    return settings.VAULT_KEY_DIR
