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
def django_db_setup(django_db_setup, django_db_blocker):
    """pytest-django's test database, and at its end (before it is dropped) a warning naming any other
    session still connected on PostgreSQL, which would make the drop fail ("is being accessed by other
    users"): its application name says which process (tests/settings.py), the threads which thread."""
    yield
    import gc
    import threading
    import time
    import warnings

    from django.db import connection

    if connection.vendor != "postgresql":
        return
    query = (
        "SELECT pid, application_name, state, backend_start, left(query, 120) FROM pg_stat_activity "
        "WHERE datname = current_database() AND pid <> pg_backend_pid()"
    )

    def sessions() -> list:
        deadline = time.monotonic() + 5  # what DROP DATABASE itself waits for sessions that are ending
        while True:
            with connection.cursor() as cursor:
                cursor.execute(query)
                others = cursor.fetchall()
            if not others or time.monotonic() > deadline:
                return others
            time.sleep(0.2)

    with django_db_blocker.unblock():
        others = sessions()
        if others:  # a connection object of a finished thread, kept in a reference cycle, closes here;
            # a cycle frozen by finance's real-time screening (gc.freeze: a rebuilt setup freezes again
            # without collecting first) is out of reach of gc.collect and gc.get_referrers until unfrozen
            gc.unfreeze()
            gc.collect()
            others = sessions()
    if others:
        import psutil

        threads = [thread.name for thread in threading.enumerate()]
        children = [" ".join(child.cmdline()[:4]) for child in psutil.Process().children(recursive=True)]
        holders = _close_our_connections({row[0] for row in others})
        warnings.warn(
            f"sessions still on the test database: {others}; threads here: {threads}; "
            f"child processes: {children}; held here by (closed now, so the drop can go on): {holders}",
            stacklevel=1,
        )


def _close_our_connections(pids: set[int]) -> list[str]:
    """Close this process's open psycopg connections to the server sessions `pids`, naming what held
    each: the chain of referrers (types, three levels up) says which object kept it open."""
    import gc

    import psycopg

    def owners(obj, depth: int) -> str:
        if depth == 0:
            return ""
        names = []
        for referrer in gc.get_referrers(obj)[:4]:
            if isinstance(referrer, list) and len(referrer) > 1000:  # gc.get_objects() itself
                continue
            label = type(referrer).__qualname__
            if isinstance(referrer, dict):
                label += "{" + ",".join(sorted(map(str, referrer))[:6]) + "}"
            names.append(label + (" <- " + owners(referrer, depth - 1) if depth > 1 else ""))
        return "(" + " | ".join(names) + ")"

    found = []
    for obj in gc.get_objects():
        # type(), not isinstance(): isinstance asks a lazy object (Django's SimpleLazyObject, e.g. a
        # request's CSP nonce) for its __class__, which evaluates it, and that can raise
        if not issubclass(type(obj), psycopg.Connection) or obj.closed or obj.info.backend_pid not in pids:
            continue
        found.append(f"backend {obj.info.backend_pid}: {owners(obj, 3)}")
        obj.close()
    return found


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
    if call.excinfo is not None:
        diagnosis = _sqlite_io_diagnosis(call.excinfo.value)
        if diagnosis:
            earlier = ", ".join(_FINISHED[-5:]) or "none"
            report.sections.append(("SQLite I/O diagnosis", f"{diagnosis}\nearlier tests here: {earlier}"))
    if report.when == "teardown":
        _FINISHED.append(item.nodeid)
    return report


_FINISHED: list[str] = []  # this process's tests, in the order they ran (for the diagnosis below)


def _sqlite_io_diagnosis(error: BaseException) -> str:
    """For an SQLite I/O error (seen once, not reproduced: "disk I/O error" opening the per-worker test
    database late in a run), what tells the causes apart: SQLite's extended error name (SHMMAP, SHMSIZE,
    LOCK, READ...), the database's files on disk (inode, size) and those this process holds open, and
    its memory-map count. Empty for any other error."""
    import sqlite3

    cause = error
    while cause is not None and not isinstance(cause, sqlite3.Error):
        cause = cause.__cause__ or cause.__context__
    if cause is None or "I/O" not in str(cause):
        return ""
    from django.db import connection

    name = str(connection.settings_dict.get("NAME") or "")
    lines = [
        f"{type(cause).__name__}: {cause} ({getattr(cause, 'sqlite_errorname', '?')})",
        f"database {name}",
    ]
    for suffix in ("", "-wal", "-shm"):
        path = Path(name + suffix)
        try:
            stat = path.stat()
            lines.append(f"  {path.name}: inode {stat.st_ino}, {stat.st_size} bytes, mode {stat.st_mode:o}")
        except OSError as missing:
            lines.append(f"  {path.name}: {missing}")
    try:
        held = sorted(filter(None, (_fd_target(fd) for fd in os.listdir("/proc/self/fd"))))
        lines.append(f"open files {len(held)}; of the database: {[h for h in held if name and name in h]}")
        with open("/proc/self/maps", encoding="utf-8", errors="replace") as maps:
            lines.append(f"memory maps {sum(1 for _ in maps)}")
    except OSError as unreadable:
        lines.append(f"/proc unreadable: {unreadable}")
    return "\n".join(lines)


def _fd_target(fd: str) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:  # closed meanwhile
        return ""


@pytest.fixture
def page(browser, live_server, request):
    """A tab in a fresh browser context; `@pytest.mark.browser_context(**options)` passes options to
    Playwright's new_context (service_workers="block": a browser that runs no service worker)."""
    marker = request.node.get_closest_marker("browser_context")
    options = {"viewport": {"width": 1280, "height": 900}, **(marker.kwargs if marker else {})}
    context = browser.new_context(base_url=live_server.url, **options)
    context.set_default_timeout(15_000)
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "report_call", None)
    if report is not None and report.failed:
        ARTIFACTS.mkdir(exist_ok=True)
        tab.screenshot(path=str(ARTIFACTS / f"{request.node.name}.png"), full_page=True)
    context.close()
    _wait_for_live_requests()


def _wait_for_live_requests(timeout: float = 30) -> None:
    """Wait for the live server's requests that the closed page left in flight (a viewer's prefetch,
    a poll) to finish: the test's data is flushed next, and a request still running would write
    against tables being truncated (a 500 on the server, a deadlock with the flush)."""
    import threading
    import time
    import warnings

    deadline = time.monotonic() + timeout
    for thread in threading.enumerate():
        # socketserver.ThreadingMixIn's thread per connection: "Thread-N (process_request_thread)"
        if "process_request_thread" in thread.name and thread is not threading.current_thread():
            thread.join(max(0.0, deadline - time.monotonic()))
            if thread.is_alive():
                warnings.warn(
                    f"a live-server request was still running {timeout:g} s after its page closed",
                    stacklevel=1,
                )
                return


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
