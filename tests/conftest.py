"""Shared fixtures: users per role, a real Celery worker process, a real browser."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.factories import UserFactory
from tests.support import cached_demo_models, start_worker, stop_worker

ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture
def make_user(db):
    def make(*roles, **attributes):
        return UserFactory(roles=[str(r) for r in roles], **attributes)

    return make


@pytest.fixture(scope="session")
def celery_worker(django_db_setup, django_db_blocker):
    """A real `manage.py run_worker` process on the configured broker, pointed at the test database."""
    from suite.celery import app

    with django_db_blocker.unblock():
        app.control.purge()  # stale messages from an earlier, interrupted run
        process = start_worker(concurrency=1)
    yield process
    stop_worker(process)


# --- real browser ------------------------------------------------------------------------
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-quic",
    "--no-first-run",
]


@pytest.fixture(scope="session")
def browser():
    # Playwright's sync API runs an event loop in this thread; the ORM calls made by tests
    # alongside it are ordinary synchronous calls, so allow them.
    os.environ["DJANGO_ALLOW_ASYNC_UNSAFE"] = "true"
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"{CHROMIUM} is missing: run scripts/system-deps.sh (make test does)."
    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"report_{report.when}", report)
    return report


@pytest.fixture
def page(browser, live_server, request):
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()


@pytest.fixture
def log_in(page):
    """log_in(user): sign `user` in through the login form (factory users share one password)."""
    from tests.factories import PASSWORD

    def run(user) -> None:
        page.goto("/login/")
        page.fill("#id_username", user.username)
        page.fill("#id_password", PASSWORD)
        page.click("button[type=submit]")
        page.locator('[data-testid="role-home"]').wait_for()

    return run


# --- models ----------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def tiny_model_dirs(django_db_setup, django_db_blocker):
    """Tiny target + draft models built by the same code as the demo models (seconds), on a bounded
    slice of the real corpus the apps register. Built once for all test processes and kept between
    runs (tests.support.cached_demo_models)."""
    from inference.datasets import corpus_contributions

    documents, conversations = [], []
    for contribution in corpus_contributions():
        documents += list(contribution.documents())[:150]
        conversations += list(contribution.conversations())[:150]
    result = cached_demo_models(
        "corpus-tiny", texts=documents, chat_examples=conversations, profile="tiny", seed=0
    )
    return result["target_dir"], result["draft_dir"]


@pytest.fixture
def served_model(db, tiny_model_dirs):
    """The tiny demo model registered as `suite-demo` with its draft, as build_demo_models registers it
    (its registry row: tests look at and change it; the apps see inference.services' ModelInfo)."""
    from inference import registry

    target_dir, draft_dir = tiny_model_dirs
    registry.model_register(actor="test:fixture", path=draft_dir, name="suite-demo-draft")
    return registry.model_register(
        actor="test:fixture",
        path=target_dir,
        name="suite-demo",
        draft_name="suite-demo-draft",
        max_concurrency=1,
    )
