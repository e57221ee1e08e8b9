"""`bench_viewer`: what a frame costs, side by side.

- suite_render: the worker's first render of an image (decode once, every frame at the default
  window, PNGs written to the cache), per frame;
- suite_cached: a frame request that finds the frame cached, through the portal view (access
  decision, trail event, file read);
- per_request: what a viewer without the cache does on every request (the usual approach of a
  DICOM web server's "rendered frame" endpoint): read the file, decode that frame, window, PNG.

Runs in a scratch workspace that is rolled back (medical.evaluation.scratch_workspace), on real
files shipped in the pydicom wheel: single- and multi-frame, greyscale and colour, compressed.
"""

from __future__ import annotations

import io
import tempfile
import time
from pathlib import Path

import pydicom
from django.test import RequestFactory, override_settings

from medical.corpus import TEST_FILES
from medical.dicom.frames import decode, png_bytes, render_frame
from medical.evaluation import evaluation_user, percentile, scratch_workspace

FILES = ("examples_ybr_color.dcm", "rtdose.dcm", "CT_small.dcm", "MR_small.dcm", "JPEG2000.dcm")


def run_viewer_benchmark(*, repeats: int = 3) -> dict:
    from medical import storage
    from medical.models import Channel, Instance
    from medical.selectors import instance_for
    from medical.services import STORED, IngestSource, instance_ingest
    from medical.services.frames import instance_frames_render
    from medical.views import instance_frame

    rows = []
    with scratch_workspace(), tempfile.TemporaryDirectory(prefix="viewer-bench-") as cache:
        source = IngestSource(
            channel=Channel.EVALUATION,
            department="bench-viewer",
            actor="command:bench_viewer",
            received_from="bench_viewer",
            previews="skip",
        )
        user = evaluation_user(department="bench-viewer")
        factory = RequestFactory()
        for relative in FILES:
            outcome = instance_ingest(
                source=source, filename=relative, data=(TEST_FILES / relative).read_bytes()
            )
            if outcome.status != STORED:
                continue
            instance = Instance.objects.select_related("series__study").get(pk=outcome.instance_id)
            frames = max(1, instance.number_of_frames or 1)
            render_ms, cached_ms, plain_ms, access_ms = [], [], [], []
            for repeat in range(repeats):
                with override_settings(MEDICAL_FRAME_CACHE_DIR=str(Path(cache) / str(repeat))):
                    started = time.perf_counter()
                    instance_frames_render(instance_id=instance.pk)
                    render_ms.append((time.perf_counter() - started) * 1000 / frames)
                    for index in range(frames):
                        request = factory.get(f"/medical/instances/{instance.pk}/frames/{index}.png")
                        request.user = user
                        started = time.perf_counter()
                        response = instance_frame(request, instance.pk, index)
                        cached_ms.append((time.perf_counter() - started) * 1000)
                        assert response.status_code == 200, response.content[:200]
                data = storage.read_media(instance.deidentified_file)
                for index in range(frames):
                    started = time.perf_counter()
                    instance_for(user, instance.pk)  # what every request pays: the decision and its event
                    access_ms.append((time.perf_counter() - started) * 1000)
                    started = time.perf_counter()
                    dataset = pydicom.dcmread(io.BytesIO(data))
                    png_bytes(render_frame(decode(dataset, frame=index), 0))
                    plain_ms.append((time.perf_counter() - started) * 1000)
            rows.append(
                {
                    "file": relative,
                    "frames": frames,
                    "size": f"{instance.columns}x{instance.rows}",
                    "suite_render_ms_per_frame": round(min(render_ms), 2),
                    "suite_cached_request_ms_p50": round(percentile(cached_ms, 0.5), 2),
                    "suite_cached_request_ms_p95": round(percentile(cached_ms, 0.95), 2),
                    "per_request_render_ms_p50": round(percentile(plain_ms, 0.5), 2),
                    "access_and_trail_ms_p50": round(percentile(access_ms, 0.5), 2),
                }
            )
    return {
        "repeats": repeats,
        "files": rows,
        "note": "per_request: read, decode one frame, window, PNG on every request (no cache, no access "
        "check); suite_cached includes the access decision and its trail event (access_and_trail alone).",
    }
