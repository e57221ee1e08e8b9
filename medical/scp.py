"""The suite's DICOM node: a C-STORE SCP (with C-ECHO) feeding the same ingest pipeline as uploads.

Only calling AE titles on the allow-list (DICOM_AE_ALLOWLIST) may associate, and only when they
call this node by its own AE title; each title is mapped to the department its studies belong to.
At most DICOM_SCP_MAX_ASSOCIATIONS associations run at once, and a peer that stays silent for
DICOM_SCP_IDLE_SECONDS (before or during an association) is disconnected, so idle connections
cannot lock a modality out. Every refused association is written to the trail. A received instance is stored or refused like an upload
(medical.services.instance_ingest): refused files answer a C-STORE failure status with the reason
in Error Comment, and nothing a peer sends can stop the server.
"""

from __future__ import annotations

import logging
import re
import threading

from pydicom.dataset import Dataset

from medical import conf
from medical.models import Channel

logger = logging.getLogger(__name__)

SUCCESS = 0x0000
OUT_OF_RESOURCES = 0xA700  # Refused: Out of Resources (PS3.4 B.2.3): our side failed, try again
DOES_NOT_MATCH_SOP_CLASS = 0xA900  # Error: Data Set does not match SOP Class
CANNOT_UNDERSTAND = 0xC000  # Error: Cannot understand
NOT_AUTHORIZED = 0x0124  # Refused: Not Authorized (PS3.7 C.5.13)


class DicomStorageServer:
    """A pynetdicom association server. `start()` returns at once; `stop()` shuts it down."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 11112,
        ae_title: str | None = None,
        allowlist: dict[str, str] | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.ae_title = ae_title or conf.scp_ae_title()
        self.allowlist = dict(conf.ae_allowlist() if allowlist is None else allowlist)
        self._server = None
        self._stopped = threading.Event()

    @property
    def address(self) -> tuple[str, int]:
        return self._server.server_address if self._server else (self.host, self.port)

    def start(self) -> None:
        from pynetdicom import AE, ALL_TRANSFER_SYNTAXES, AllStoragePresentationContexts, evt
        from pynetdicom.sop_class import Verification

        ae = AE(ae_title=self.ae_title)
        for context in AllStoragePresentationContexts:
            # Accept compressed syntaxes too: validation and de-identification do not decode pixels.
            ae.add_supported_context(context.abstract_syntax, ALL_TRANSFER_SYNTAXES)
        ae.add_supported_context(Verification)
        ae.require_calling_aet = list(self.allowlist)
        ae.require_called_aet = True
        ae.maximum_associations = _setting_int("DICOM_SCP_MAX_ASSOCIATIONS", 10)
        idle = _setting_int("DICOM_SCP_IDLE_SECONDS", 30)
        ae.acse_timeout = ae.dimse_timeout = ae.network_timeout = idle
        handlers = [
            (evt.EVT_REJECTED, self.handle_rejected),
            (evt.EVT_C_STORE, self.handle_store),
            (evt.EVT_C_ECHO, self.handle_echo),
            (evt.EVT_CONN_CLOSE, _close_database_connection),
        ]
        self._server = ae.start_server((self.host, self.port), block=False, evt_handlers=handlers)
        logger.info("DICOM node %s listening on %s:%s", self.ae_title, *self.address)

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server = None
        self._stopped.set()

    def wait(self) -> None:
        self._stopped.wait()

    def handle_echo(self, event) -> int:
        return SUCCESS

    def handle_rejected(self, event) -> None:
        """Trail a refused association: who called, which title they called, why."""
        from audit.services import record

        calling = str(event.assoc.requestor.ae_title).strip()
        request = getattr(event.assoc.requestor, "primitive", None)
        called = str(getattr(request, "called_ae_title", "") or "").strip()
        if calling not in self.allowlist:
            reason = "calling AE title is not on the allow-list"
        elif called and called != self.ae_title.strip():
            reason = "called AE title is not this node's"
        else:
            reason = "too many associations at once"
        try:
            record(
                actor=f"scp:{_actor_name(self.ae_title)}",
                action="dicom.association",
                resource_type="dicom_node",
                resource_id=self.ae_title,
                outcome="denied",
                payload={
                    "calling_ae": calling[:16],
                    "called_ae": called[:16],
                    "reason": reason,
                    "address": str(event.assoc.requestor.address),
                },
            )
        except Exception:
            logger.exception("Could not trail a refused DICOM association")

    def handle_store(self, event) -> int | Dataset:
        from medical.services import FAILED, REJECTED, IngestSource, instance_ingest

        try:
            calling = str(event.assoc.requestor.ae_title).strip()
            department = self.allowlist.get(calling)
            if department is None:  # require_calling_aet refuses these at association already
                return _failure(NOT_AUTHORIZED, "calling AE title is not on the allow-list")
            source = IngestSource(
                channel=Channel.SCP,
                department=department,
                actor=f"scp:{_actor_name(calling)}",
                received_from=calling,
            )
            outcome = instance_ingest(
                source=source,
                filename=f"C-STORE from {calling}",
                data=event.encoded_dataset(include_meta=True),
            )
        except Exception:
            logger.exception("C-STORE handling failed")
            return _failure(OUT_OF_RESOURCES, "the archive could not store the instance; retry")
        if outcome.status == FAILED:
            return _failure(OUT_OF_RESOURCES, outcome.reason)
        if outcome.status != REJECTED:
            return SUCCESS
        if "missing required" in outcome.reason or "not a valid UID" in outcome.reason:
            return _failure(DOES_NOT_MATCH_SOP_CLASS, outcome.reason)
        return _failure(CANNOT_UNDERSTAND, outcome.reason)


def _failure(status: int, reason: str) -> Dataset:
    response = Dataset()
    response.Status = status
    response.ErrorComment = reason[:64]  # LO: at most 64 characters
    return response


def _setting_int(name: str, default: int) -> int:
    from django.conf import settings

    return int(getattr(settings, name, default))


def _actor_name(calling_ae: str) -> str:
    """AE titles may hold spaces; the trail's system actor names may not."""
    return re.sub(r"\s+", "_", calling_ae) or "unnamed"


def _close_database_connection(event) -> None:
    """Each association runs in its own thread, with its own database connection: release it."""
    from django.db import connection

    connection.close()
