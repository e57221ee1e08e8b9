"""Fault: PostgreSQL restarts while a transaction batch is being imported.

A private PostgreSQL cluster (initdb and pg_ctl from the server binaries, on a free loopback port, in
a temporary folder, run as the `postgres` user when the tests run as root, since initdb refuses
root) stands in for the production database; the machine's own server serves other test runs and
is never touched. `import_transactions` runs as a real process; once it reports its first screened
chunk (inside the batch's transaction) the cluster is restarted with a fast shutdown, which ends
every session. The batch must then be entirely absent, the command must say so, and the same
command run again must store the batch entirely.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from tests.support import MANAGE, ROOT, free_port, subprocess_env

PG_BIN = Path(os.environ.get("SUITE_PG_BIN", "/usr/lib/postgresql/15/bin"))
ROWS = 6_000  # three chunks of 2,000: the import is still inside its transaction when the restart comes
BATCH = "pgrestart"


class PrivatePostgres:
    def __init__(self):
        self.root = Path(tempfile.mkdtemp(prefix="suite-pg-"))
        self.data, self.port = self.root / "data", free_port()
        self.as_postgres: list[str] = []
        if os.geteuid() == 0:
            user = pwd.getpwnam("postgres")
            os.chown(self.root, user.pw_uid, user.pw_gid)
            self.as_postgres = ["runuser", "-u", "postgres", "--"]

    @property
    def url(self) -> str:
        return f"postgres://postgres@127.0.0.1:{self.port}/postgres"

    def run(self, *command: str, timeout: float = 120) -> None:
        done = subprocess.run(
            [*self.as_postgres, *command], capture_output=True, text=True, timeout=timeout, cwd=self.root
        )
        assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"

    def pg_ctl(self, action: str, *extra: str) -> None:
        options = f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off"
        self.run(str(PG_BIN / "pg_ctl"), "-D", str(self.data), "-l", str(self.root / "server.log"), "-w",
                 "-o", options, *extra, action)  # fmt: skip

    def query(self, sql: str, params: tuple = ()):
        import psycopg

        with psycopg.connect(host="127.0.0.1", port=self.port, user="postgres", dbname="postgres") as db:
            return db.execute(sql, params).fetchone()[0]


@pytest.fixture(scope="module")
def private_postgres():
    if not (PG_BIN / "initdb").exists():
        pytest.skip(f"PostgreSQL server binaries are absent ({PG_BIN}; Debian package postgresql-15)")
    if os.geteuid() == 0 and shutil.which("runuser") is None:
        pytest.skip("running as root, and runuser (to run initdb as postgres) is missing")
    try:
        cluster = PrivatePostgres()
    except KeyError:
        pytest.skip("running as root (initdb refuses root) and there is no `postgres` user to run it as")
    try:
        cluster.run(str(PG_BIN / "initdb"), "-D", str(cluster.data), "-A", "trust", "-U", "postgres",
                    "-E", "UTF8", "--no-sync")  # fmt: skip
        cluster.pg_ctl("start")
        migrated = subprocess.run(
            [sys.executable, MANAGE, "migrate", "--noinput"],
            env=subprocess_env(DATABASE_URL=cluster.url), capture_output=True, text=True, timeout=600, cwd=ROOT,
        )  # fmt: skip
        assert migrated.returncode == 0, migrated.stderr[-3000:]
        yield cluster
    finally:
        subprocess.run([*cluster.as_postgres, str(PG_BIN / "pg_ctl"), "-D", str(cluster.data), "-m", "immediate",
                        "stop"], capture_output=True, timeout=60)  # fmt: skip
        shutil.rmtree(cluster.root, ignore_errors=True)


def _rows() -> list[dict]:
    return [
        {"tx_ref": f"{BATCH}-{i}", "ts": 1_700_000_000 + 60 * i, "src_account": f"PG-SRC-{i % 97}",
         "dst_account": f"PG-DST-{i % 89}", "amount_paid": 9_400.0 + (i % 7) * 50, "currency_paid": "USD",
         "payment_format": "Wire"}
        for i in range(ROWS)
    ]  # fmt: skip


def _import(cluster: PrivatePostgres, path: Path) -> subprocess.Popen:
    return subprocess.Popen(
        [
            sys.executable,
            MANAGE,
            "import_transactions",
            str(path),
            "--format",
            "json",
            "--team",
            "aml-eu",
            "--batch",
            BATCH,
        ],  # fmt: skip
        env=subprocess_env(DATABASE_URL=cluster.url),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=ROOT,
    )


def _stored(cluster: PrivatePostgres) -> dict:
    return {
        "transactions": cluster.query(
            "SELECT count(*) FROM finance_transaction WHERE tx_ref LIKE %s", (f"{BATCH}-%",)
        ),
        "alerts": cluster.query("SELECT count(*) FROM finance_alert"),
        "trail": cluster.query("SELECT count(*) FROM audit_event"),
    }


def test_a_restart_mid_import_leaves_the_batch_absent_and_a_rerun_stores_it_whole(private_postgres, tmp_path):
    rows = tmp_path / "batch.json"
    rows.write_text(json.dumps(_rows()))
    before = _stored(private_postgres)
    assert before["transactions"] == 0

    importing = _import(private_postgres, rows)
    try:
        # The first progress line is printed after a chunk is screened and stored, inside the transaction.
        deadline = time.monotonic() + 300
        for line in importing.stdout:
            if f"/{ROWS} (" in line:
                break
            assert time.monotonic() < deadline, "the import printed no progress"
        else:
            pytest.fail(f"the import ended before its first chunk: {importing.stderr.read()[-2000:]}")
        private_postgres.pg_ctl("restart", "-m", "fast")
        out, err = importing.communicate(timeout=120)
    finally:
        if importing.poll() is None:
            importing.kill()
    assert importing.returncode != 0, out
    assert f"batch {BATCH} is stored all or nothing, so none of it was kept" in err, err[-2000:]
    assert "Traceback" not in err
    assert _stored(private_postgres) == before  # entirely absent: no row, no alert, no trail event

    again = _import(private_postgres, rows)
    out, err = again.communicate(timeout=600)
    assert again.returncode == 0, err[-3000:]
    after = _stored(private_postgres)
    assert after["transactions"] == ROWS  # entirely present
    assert after["trail"] > before["trail"]
