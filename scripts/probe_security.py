"""Probe a live Suite over HTTP the way an outsider would (issue 11), and print one JSON report.

    .venv/bin/python scripts/probe_security.py [--keep]

Starts its own server (`manage.py runserver --noreload` on a free loopback port) on a private
SUITE_VAR_DIR under /tmp (never the deployment's var/), with no address allow-listed for /metrics
and the API docs, creates two users, then checks: the gated endpoints, the security headers,
no-store and the idle limit of the session cookie, the sign-in lockout (429 + Retry-After, the right
password refused too), token issuance (hashed at rest, expiring, trailed without the key), JSON
depth/size and seed limits (400, not 500), a study upload and its page read on the trail, a
deflated DICOM bomb refused with nothing stored, verify_trail against a chain deleted behind its signed
checkpoint, that neither the token nor the password reached the server's log, and a real
`run_dicom_scp` node (cap 2, idle 2 s) against a wrong called AE title and idle TCP peers. Each
check is "ok": true/false with what was seen; the exit status is 1 if any failed.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import re
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import pydicom
import requests
from pydicom.dataset import FileMetaDataset
from pydicom.filewriter import write_file_meta_info
from pydicom.uid import DeflatedExplicitVRLittleEndian, generate_uid
from pynetdicom import AE
from pynetdicom.sop_class import Verification

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
PASSWORD = "Probe-pass-4711!"  # noqa: S105 (a throw-away user in a throw-away database)
CREATE_USERS = f"""
from django.contrib.auth.models import Group
from accounts.models import User
for name, role, department in (("probe_locked", "clinician", "radiology"), ("probe_user", "clinician", "radiology")):
    user = User.objects.create_user(name, password={PASSWORD!r}, department=department)
    user.groups.add(Group.objects.get_or_create(name=role)[0])
"""


def _get(url: str, **kwargs) -> requests.Response:
    return requests.get(url, timeout=60, **kwargs)


def _post(url: str, **kwargs) -> requests.Response:
    return requests.post(url, timeout=60, **kwargs)


def _deflate_bomb() -> bytes:
    """A DICOM file in the deflated transfer syntax whose data set inflates to 96 MiB of zeros."""
    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = "1.2.840.10008.5.1.4.1.1.2"
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    buffer = io.BytesIO()
    buffer.write(b"\x00" * 128 + b"DICM")
    write_file_meta_info(buffer, meta, enforce_standard=True)
    packer = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    return buffer.getvalue() + packer.compress(b"\x00" * (96 << 20)) + packer.flush()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _manage(env: dict, *args: str, check: bool = True) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, check=check
    )


def _csrf(session: requests.Session, url: str) -> str:
    page = session.get(url).text
    return re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page).group(1)


def _login(base: str, username: str, password: str) -> tuple[requests.Session, requests.Response]:
    session = requests.Session()
    token = _csrf(session, f"{base}/login/")
    response = session.post(
        f"{base}/login/",
        data={"username": username, "password": password, "csrfmiddlewaretoken": token},
        headers={"Referer": f"{base}/login/"},
        allow_redirects=False,
    )
    return session, response


def probe(base: str, env: dict, database: Path) -> tuple[dict, dict]:
    checks: dict[str, dict] = {}

    def record(name: str, ok: bool, **seen) -> None:
        checks[name] = {"ok": bool(ok), **seen}

    # 1. /metrics and the API docs: nobody signed in, the address not allow-listed.
    gated = {path: _get(f"{base}{path}").status_code for path in ("/metrics", "/api/docs/", "/api/schema/")}
    record("metrics_and_docs_need_sign_in", all(code == 403 for code in gated.values()), status=gated)

    # 2. Headers on a page.
    page = _get(f"{base}/login/")
    csp = page.headers.get("Content-Security-Policy", "")
    record(
        "csp_and_secure_headers",
        "default-src 'self'" in csp and "frame-ancestors 'none'" in csp and "script-src 'self'" in csp
        and page.headers.get("X-Frame-Options") == "DENY"
        and page.headers.get("X-Content-Type-Options") == "nosniff",
        csp=csp,
        x_frame_options=page.headers.get("X-Frame-Options"),
        referrer_policy=page.headers.get("Referrer-Policy"),
    )  # fmt: skip

    # 3. A signed-in clinician: no-store on patient pages; the session cookie's idle limit.
    session, signed_in = _login(base, "probe_user", PASSWORD)
    cookie = signed_in.headers.get("Set-Cookie", "")
    max_age = re.search(r"sessionid=[^;]+;.*?Max-Age=(\d+)", cookie)
    studies = session.get(f"{base}/medical/")
    record(
        "no_store_on_patient_pages_and_idle_limit",
        signed_in.status_code == 302 and studies.headers.get("Cache-Control") == "no-store"
        and max_age is not None and int(max_age.group(1)) <= 1800,
        sign_in=signed_in.status_code, medical_status=studies.status_code,
        cache_control=studies.headers.get("Cache-Control"), session_max_age=max_age and int(max_age.group(1)),
    )  # fmt: skip

    # 4. API token: issued once, stored as a digest, expiring, trailed without the key.
    issued = _post(f"{base}/api/auth/token/", json={"username": "probe_user", "password": PASSWORD})
    key = issued.json().get("token", "")
    bearer = {"Authorization": f"Bearer {key}"}
    me = _get(f"{base}/api/me/", headers=bearer)
    with sqlite3.connect(database) as db:
        rows = db.execute("SELECT digest, token_key, expiry FROM knox_authtoken").fetchall()
        trail = db.execute("SELECT payload_json FROM audit_event WHERE action = 'api_token.issue'").fetchall()
        dump = "\n".join(db.iterdump())
    record(
        "token_hashed_expiring_trailed",
        issued.status_code == 200 and me.status_code == 200 and len(rows) == 1 and rows[0][2]
        and key not in dump and len(trail) == 1 and key[:8] in trail[0][0],
        issue_status=issued.status_code, me_status=me.status_code, stored_digest_chars=len(rows[0][0]) if rows else 0,
        expiry=rows[0][2] if rows else None, key_in_database_dump=key in dump, trailed=len(trail),
    )  # fmt: skip

    # 5. Hostile JSON and seeds: 400 with a message, never 500.
    def post_v1(body: bytes) -> requests.Response:
        return _post(
            f"{base}/v1/completions", data=body, headers={**bearer, "Content-Type": "application/json"}
        )

    nested = post_v1(b'{"model": "x", "prompt": ' + b"[" * 100_000 + b"]" * 100_000 + b"}")
    huge = post_v1(json.dumps({"model": "x", "prompt": "a" * (5 << 20)}).encode())
    seed = post_v1(json.dumps({"model": "x", "prompt": "hi", "seed": 2**32}).encode())
    record(
        "json_and_seed_limits",
        (nested.status_code, huge.status_code, seed.status_code) == (400, 400, 400),
        nested=nested.status_code, oversized=huge.status_code, seed=seed.status_code,
        seed_message=seed.text[:200],
    )  # fmt: skip

    # 6. Patient data: an upload as the clinician, a successful read of the study recorded; a
    #    deflated DICOM bomb (about 100 KB that inflates to 96 MiB) refused, nothing stored for it.
    ct_small = Path(pydicom.__file__).parent / "data" / "test_files" / "CT_small.dcm"
    files = [("files", ("CT_small.dcm", ct_small.read_bytes())), ("files", ("bomb.dcm", _deflate_bomb()))]
    uploaded = _post(f"{base}/api/medical/studies/upload/", files=files, headers=bearer)
    report = {item["filename"]: item for item in uploaded.json().get("files", [])} if uploaded.ok else {}
    study_id = (report.get("CT_small.dcm") or {}).get("study_id")
    page = session.get(f"{base}/medical/studies/{study_id}/") if study_id else None
    with sqlite3.connect(database) as db:
        reads = db.execute(
            "SELECT actor_label, outcome FROM audit_event WHERE action = 'study.view' AND resource_id = ?",
            [str(study_id)],
        ).fetchall()
        stored = db.execute("SELECT COUNT(*) FROM medical_instance").fetchone()[0]
    bomb = report.get("bomb.dcm") or {}
    record(
        "patient_reads_recorded_and_deflate_bomb_refused",
        page is not None and page.status_code == 200 and ("probe_user", "allowed") in reads
        and bomb.get("status") == "rejected" and stored == 1,
        upload_status=uploaded.status_code, study_page=page.status_code if page is not None else None,
        reads_recorded=reads, bomb=bomb.get("reason", "")[:160], instances_stored=stored,
    )  # fmt: skip

    # 7. Lockout: wrong passwords, then the right one (last: it locks this address too).
    wrong = [_login(base, "probe_locked", f"guess-{n}")[1] for n in range(6)]
    right = _login(base, "probe_locked", PASSWORD)[1]
    record(
        "sign_in_lockout",
        wrong[-1].status_code == 429 and right.status_code == 429 and right.headers.get("Retry-After"),
        wrong_statuses=[r.status_code for r in wrong], right_password_status=right.status_code,
        retry_after=right.headers.get("Retry-After"),
    )  # fmt: skip

    # 8. The DICOM node (before the trail is cut below: its refusals are written to it).
    checks["dicom_node_called_ae_and_idle_peers"] = probe_dicom_node(env, database)

    # 9. The trail: a signed checkpoint, then the whole chain of a second writer deleted behind it.
    verified = _manage(env, "verify_trail", check=False)
    _manage(env, "checkpoint_trail")
    with sqlite3.connect(database) as db:
        db.execute("DELETE FROM audit_event WHERE chain = 'suite'")
        db.execute("DELETE FROM audit_chainhead WHERE chain = 'suite'")
    deleted = _manage(env, "verify_trail", check=False)
    record(
        "verify_trail_names_a_deleted_chain",
        verified.returncode == 0 and deleted.returncode != 0 and "suite" in deleted.stdout + deleted.stderr,
        before=verified.returncode, after=deleted.returncode,
        after_says=(deleted.stdout + deleted.stderr).strip().splitlines()[:3],
    )  # fmt: skip
    return checks, {"api token": key, "password": PASSWORD}


def probe_dicom_node(env: dict, database: Path) -> dict:
    """The DICOM node under abuse: a wrong called AE title, more idle TCP peers than the node takes,
    then a real modality (MODALITY1, allow-listed by default) once the node has dropped them."""
    port = _free_port()
    node_env = {**env, "DICOM_SCP_MAX_ASSOCIATIONS": "2", "DICOM_SCP_IDLE_SECONDS": "2"}
    node = subprocess.Popen(
        [PYTHON, "manage.py", "run_dicom_scp", "--port", str(port), "--ae-title", "SUITE"],
        cwd=ROOT, env=node_env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
    )  # fmt: skip
    try:
        banner = node.stdout.readline()

        def associate(called: str = "SUITE"):
            ae = AE(ae_title="MODALITY1")
            ae.add_requested_context(Verification)
            return ae.associate("127.0.0.1", port, ae_title=called)

        def echo() -> bool:
            association = associate()
            if not association.is_established:
                return False
            ok = association.send_c_echo().Status == 0x0000
            association.release()
            return ok

        wrong_called = associate("NOT_SUITE").is_rejected
        idle = [socket.create_connection(("127.0.0.1", port)) for _ in range(3)]
        time.sleep(0.5)
        while_idle = echo()
        started, recovered = time.monotonic(), False
        while not recovered and time.monotonic() - started < 15:
            recovered = echo()
        waited = round(time.monotonic() - started, 1)
        dropped = all(sock.recv(1) == b"" for sock in idle)
        for sock in idle:
            sock.close()
    finally:
        node.terminate()
        node.wait(timeout=20)
    with sqlite3.connect(database) as db:
        refusals = [row[0] for row in db.execute(
            "SELECT payload_json FROM audit_event WHERE action = 'dicom.association' AND outcome = 'denied'"
        )]  # fmt: skip
    return {
        "ok": "listening" in banner and wrong_called and not while_idle and recovered and dropped
        and any("called AE title" in p for p in refusals) and any("too many" in p for p in refusals),
        "wrong_called_ae_rejected": wrong_called,
        "echo_while_3_idle_peers_hold_2_slots": while_idle,
        "echo_after_the_idle_timeout": recovered,
        "seconds_until_the_modality_got_in": waited,
        "idle_peers_disconnected": dropped,
        "refusals_on_the_trail": len(refusals),
    }  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true", help="Keep the private var directory.")
    options = parser.parse_args()
    var = Path(tempfile.mkdtemp(prefix="suite-probe-"))
    env = {
        **os.environ,
        "SUITE_VAR_DIR": str(var),
        "DATABASE_URL": f"sqlite:///{var / 'probe.sqlite3'}",
        "SUITE_OPEN_ENDPOINT_ADDRESSES": "192.0.2.1",  # documentation address: loopback not allow-listed
        "DJANGO_DEBUG": "false",
    }
    port = _free_port()
    server = None
    try:
        _manage(env, "migrate", "--noinput")
        _manage(env, "shell", "-c", CREATE_USERS)
        log = (var / "server.log").open("wb")
        server = subprocess.Popen(
            [PYTHON, "manage.py", "runserver", f"127.0.0.1:{port}", "--noreload"],
            cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                requests.get(f"{base}/healthz", timeout=2)
                break
            except requests.ConnectionError:
                time.sleep(0.5)
        checks, secrets = probe(base, env, var / "probe.sqlite3")
        server.terminate()
        server.wait(timeout=20)
        server = None
        log.close()
        # 10. Nothing secret in the server's log (every request above, failures included, went through it).
        text = (var / "server.log").read_text(errors="replace")
        leaked = [label for label, value in secrets.items() if value and value in text]
        checks["no_secret_in_the_server_log"] = {
            "ok": not leaked,
            "leaked": leaked,
            "log_lines": text.count("\n"),
        }
    finally:
        if server is not None:
            server.terminate()
            server.wait(timeout=20)
        if not options.keep:
            shutil.rmtree(var, ignore_errors=True)
    print(json.dumps({"passed": sum(c["ok"] for c in checks.values()), "checks": checks}, indent=2))
    return 0 if all(check["ok"] for check in checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
