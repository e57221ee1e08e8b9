"""The DICOM node under abuse: idle connections time out, associations are capped, the called AE
title is checked, and every refused association is on the trail."""

from __future__ import annotations

import socket
import subprocess
import sys
import time

import pytest
from pynetdicom.sop_class import Verification

from audit.models import Event
from tests.support import MANAGE, ROOT, dicom_association, dicom_echo, free_port, subprocess_env, wait_for

IDLE_SECONDS = 2


@pytest.fixture(scope="module")
def small_node(django_db_setup, django_db_blocker):
    port = free_port()
    env = subprocess_env(DICOM_SCP_MAX_ASSOCIATIONS="2", DICOM_SCP_IDLE_SECONDS=str(IDLE_SECONDS))
    process = subprocess.Popen(
        [sys.executable, MANAGE, "run_dicom_scp", "--port", str(port), "--ae-title", "SUITE"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, cwd=ROOT,
    )  # fmt: skip
    try:
        banner = process.stdout.readline()
        assert "listening" in banner, banner
        wait_for(lambda: dicom_echo(port, "MODALITY1") == 0x0000, timeout=20, message="C-ECHO from MODALITY1")
        yield port
    finally:
        process.terminate()
        process.wait(timeout=20)


@pytest.mark.django_db(transaction=True)
def test_wrong_called_ae_title_is_refused_and_trailed(small_node):
    association = dicom_association(small_node, "MODALITY1", [Verification], called="NOT_SUITE")
    assert association.is_rejected
    wait_for(
        lambda: Event.objects.filter(action="dicom.association", payload_json__contains="NOT_SUITE").exists(),
        timeout=10, message="refusal on the trail",
    )  # fmt: skip
    event = Event.objects.filter(action="dicom.association").latest("id")
    assert event.outcome == "denied" and event.payload["reason"] == "called AE title is not this node's"


@pytest.mark.django_db(transaction=True)
def test_unknown_calling_ae_refusal_is_trailed(small_node):
    assert dicom_echo(small_node, "INTRUDER") is None
    wait_for(
        lambda: Event.objects.filter(action="dicom.association", payload_json__contains="INTRUDER").exists(),
        timeout=10, message="refusal on the trail",
    )  # fmt: skip


@pytest.mark.django_db(transaction=True)
def test_idle_connections_cannot_lock_a_modality_out(small_node):
    idle = [socket.create_connection(("127.0.0.1", small_node)) for _ in range(3)]
    try:
        time.sleep(0.5)
        assert dicom_echo(small_node, "MODALITY1") is None  # the cap (2) is taken by silent peers
        wait_for(lambda: dicom_echo(small_node, "MODALITY1") == 0x0000, timeout=IDLE_SECONDS + 10,
                 message="the node dropping idle peers")  # fmt: skip
        assert all(sock.recv(1) == b"" for sock in idle)  # closed by the node
    finally:
        for sock in idle:
            sock.close()
    assert Event.objects.filter(action="dicom.association", payload_json__contains="too many").exists()
