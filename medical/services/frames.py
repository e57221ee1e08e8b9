"""Viewer frames: rendered by the Celery worker on demand, cached on disk, never rendered twice.

Layout under MEDICAL_FRAME_CACHE_DIR (var/cache/medical-frames by default):

    <department>/<sop uid>/<sha256 of the de-identified copy, 16>-<renderer>/<window>/<index>.png

The de-identified copy's digest and the renderer version are in the path, so a changed copy or a
changed renderer misses the cache by construction; older versions of an instance's folder are
removed when a new one is written. Per instance, the default window is always kept and at most
MEDICAL_FRAME_CACHE_WINDOWS other windows (the least recently used go first). The whole cache is held
under MEDICAL_FRAME_CACHE_MAX_BYTES: after a render, a worker (one at a time, at most every
MEDICAL_FRAME_CACHE_TRIM_SECONDS) drops the least recently used windows of any image until the cache
is back under 90% of the bound. "Used" is the window folder's modification time: writing a frame sets
it, and a cache hit refreshes it (at most once a minute per folder). The cache holds only what the
de-identified copy already holds (no identity), and every read of it goes through a view that asks
the access policy first.

A request for a frame that is not cached queues one task for its instance and window (once: a
marker file stops duplicates while it runs); the task renders the requested frame first, then the
instance's other frames, so scrolling a stack finds them ready. The marker records when the render
was queued and when a worker started it, so a request can say which of the two it is waiting for:
a render that no worker has started for MEDICAL_FRAME_QUEUED_NOTICE_SECONDS is answered at once
with that state (the worker is not running, or busy), instead of holding a web thread each time.
"""

from __future__ import annotations

import fcntl
import io
import json
import logging
import os
import shutil
import time
from dataclasses import dataclass
from pathlib import Path

import pydicom

from medical import conf, storage
from medical.dicom.frames import FrameError, Window, decode, png_bytes, render_frame
from medical.models import Instance

logger = logging.getLogger(__name__)

RENDERER = "r1"
DEFAULT_KEY = "default"
_QUEUED = ".queued"
_FAILED = "failed.json"
_WINDOW = "window.json"
QUEUED_STALE_SECONDS = 120  # a marker older than this belongs to a lost task: queue again
USED_TOUCH_SECONDS = 60  # a hit refreshes its folder's "last used" time at most this often
TRIM_TARGET = 0.9  # a trim goes below the bound, so the next renders do not trim again at once
_TRIM_LOCK = ".trim.lock"
_TRIMMED = ".trimmed"


@dataclass(frozen=True)
class RenderState:
    """Why a frame is not ready yet: `queued` (no worker has started the render) or `rendering`,
    and for how many seconds it has been in that state."""

    state: str
    seconds: float

    @property
    def stalled(self) -> bool:
        """Queued for so long that the worker is probably not running (or busy with other work)."""
        return self.state == "queued" and self.seconds >= conf.frame_queued_notice_seconds()


@dataclass(frozen=True)
class Frame:
    """A cached frame and the window it was rendered at (None: the header's VOI LUT)."""

    png: bytes
    window: Window | None


def frame_window(center: str | None, width: str | None) -> Window | None:
    """The window asked for in a request (`wc`, `ww`), or None for the default; FrameError if malformed."""
    if center in (None, "") and width in (None, ""):
        return None
    if center in (None, "") or width in (None, ""):
        raise FrameError("Give both the window center (wc) and width (ww), or neither for the default.")
    try:
        center_value, width_value = float(center), float(width)
    except (TypeError, ValueError):
        raise FrameError("Window center (wc) and width (ww) must be numbers, e.g. wc=40&ww=400.") from None
    return Window.requested(center_value, width_value)


def frame_count(instance: Instance) -> int:
    return max(1, instance.number_of_frames or 1)


def frame_check(instance: Instance, index: int) -> None:
    """Refuse what cannot be rendered before anything is queued (the message says why)."""
    if not instance.has_pixel_data or instance.preview_status == Instance.PreviewStatus.UNAVAILABLE:
        raise FrameError(
            "This image has no pixels Suite can show (no pixel data, or no decoder for its syntax)."
        )
    count = frame_count(instance)
    if not 0 <= index < count:
        raise FrameError(f"Frame {index} does not exist: this image has frames 0 to {count - 1}.")


def frame_cached(instance: Instance, *, index: int, window: Window | None) -> Frame | None:
    """The cached frame, or None. Raises FrameError if the worker found the image cannot be rendered."""
    folder = _window_dir(instance, window)
    failed = folder / _FAILED
    if failed.exists():
        raise FrameError(json.loads(failed.read_text())["reason"])
    path = folder / f"{index}.png"
    try:
        png = path.read_bytes()
    except FileNotFoundError:
        return None
    _mark_used(folder)
    return Frame(png=png, window=window or _stored_window(folder))


def frame_wait(
    instance: Instance, *, index: int, window: Window | None, timeout: float
) -> Frame | RenderState:
    """Queue the render if needed, then wait up to `timeout` seconds for the worker to write the frame.

    Returns the frame, or the state of its render when it is not ready: at once, without waiting,
    when the render has been queued so long that no worker seems to be taking it.
    """
    frame = frame_cached(instance, index=index, window=window)
    if frame is not None:
        return frame
    frames_queue(instance, window=window, first=index)
    deadline = time.monotonic() + timeout
    while True:
        state = frame_render_state(instance, window=window)
        if state.stalled or time.monotonic() >= deadline:
            return frame_cached(instance, index=index, window=window) or state
        time.sleep(0.05)
        frame = frame_cached(instance, index=index, window=window)
        if frame is not None:
            return frame


def frame_render_state(instance: Instance, *, window: Window | None) -> RenderState:
    """How the render of `instance` at `window` stands: queued (for how long) or rendering."""
    record = _marker(_window_dir(instance, window) / _QUEUED)
    now = time.time()
    if record is None:  # just finished (or failed): the next look at the cache tells
        return RenderState("rendering", 0.0)
    if record.get("started_at"):
        return RenderState("rendering", max(0.0, now - record["started_at"]))
    return RenderState("queued", max(0.0, now - record.get("queued_at", now)))


def frames_queue(instance: Instance, *, window: Window | None, first: int = 0) -> bool:
    """Queue the render of `instance` at `window` unless a render is already queued; True if queued."""
    from medical.tasks import render_instance_frames

    folder = _window_dir(instance, window)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / _QUEUED
    now = time.time()
    try:
        descriptor = os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        if now - _mtime(marker) < QUEUED_STALE_SECONDS:
            return False
        # A lost task (its worker died) or a message nobody took yet: send it again. A render that
        # never started keeps its first queued time, so the wait it reports keeps growing.
        record = _marker(marker) or {}
        queued_at = record.get("queued_at", now) if not record.get("started_at") else now
        _write(marker, json.dumps({"queued_at": queued_at}).encode())
    else:
        with os.fdopen(descriptor, "wb") as handle:
            handle.write(json.dumps({"queued_at": now}).encode())
    center, width = (window.center, window.width) if window else (None, None)
    try:
        render_instance_frames.apply_async(
            args=(instance.pk, center, width, first), queue=conf.frame_render_queue()
        )
    except Exception:
        marker.unlink(missing_ok=True)
        raise
    return True


def instance_frames_render(
    *, instance_id: int, center: float | None = None, width: float | None = None, first: int = 0
) -> int:
    """Render the frames of one instance at one window into the cache (frame `first` first).

    Returns how many frames were written; frames already cached are not rendered again. An image
    that cannot be decoded leaves a `failed.json` with the reason, which frame requests report.
    """
    instance = Instance.objects.select_related("series__study").filter(pk=instance_id).first()
    if instance is None:
        return 0
    window = None if center is None or width is None else Window.rounded(center, width)
    folder = _window_dir(instance, window)
    folder.mkdir(parents=True, exist_ok=True)
    written = 0
    started = _started(folder / _QUEUED)
    try:
        count = frame_count(instance)
        missing = [i for i in _order(count, first) if not (folder / f"{i}.png").exists()]
        if not missing:
            return 0
        try:
            dataset = pydicom.dcmread(io.BytesIO(storage.read_media(instance.deidentified_file)))
            image = decode(dataset)
        except FrameError as exc:
            return _failed(folder, str(exc))
        except Exception as exc:  # a damaged stored copy: report it on every request, do not retry
            logger.exception("frames of instance %s cannot be read", instance_id)
            return _failed(folder, f"The stored copy of this image cannot be read ({type(exc).__name__}).")
        if window is None:
            default = image.default_window
            _write(
                folder / _WINDOW,
                json.dumps({"center": default.center, "width": default.width} if default else {}).encode(),
            )
        for index in missing:
            if index >= image.count:
                continue
            _write(folder / f"{index}.png", png_bytes(render_frame(image, index, window)))
            written += 1
            if time.time() - _mtime(folder / _QUEUED) > USED_TOUCH_SECONDS:
                _started(folder / _QUEUED, started)  # a long render: not taken for a lost one
    finally:
        (folder / _QUEUED).unlink(missing_ok=True)
    _prune(instance, keep=folder)
    frame_cache_trim(keep=folder)
    return written


@dataclass(frozen=True)
class CacheTrim:
    """What one trim of the frame cache found and did (bytes of the PNGs and window records)."""

    bytes_before: int
    bytes_after: int
    windows_removed: int


def frame_cache_trim(*, keep: Path | None = None, force: bool = False) -> CacheTrim | None:
    """Hold the frame cache under MEDICAL_FRAME_CACHE_MAX_BYTES by dropping least recently used windows.

    Returns None without looking when another process is trimming or, unless `force`, the last trim
    is more recent than MEDICAL_FRAME_CACHE_TRIM_SECONDS (walking a large cache after every render
    would cost more than the render). `keep` (the window just rendered) and windows a render is
    writing are never dropped.
    """
    root = conf.frame_cache_dir()
    if not root.is_dir():
        return CacheTrim(0, 0, 0)
    stamp = root / _TRIMMED
    if not force and time.time() - _mtime(stamp) < conf.frame_cache_trim_seconds():
        return None
    with open(root / _TRIM_LOCK, "a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return None
        stamp.touch()
        windows = sorted(_cached_windows(root))  # least recently used first
        before = total = sum(size for _, size, _ in windows)
        removed = 0
        if total > conf.frame_cache_max_bytes():
            target = int(conf.frame_cache_max_bytes() * TRIM_TARGET)
            for _, size, folder in windows:
                if total <= target:
                    break
                if folder == keep or _rendering(folder):
                    continue
                shutil.rmtree(folder, ignore_errors=True)
                total -= size
                removed += 1
                _remove_empty(folder.parent, root)
    if removed:
        logger.info("frame cache trimmed from %d to %d bytes (%d windows)", before, total, removed)
    return CacheTrim(before, total, removed)


# --- the cache layout ----------------------------------------------------------------------------


def _instance_dir(instance: Instance) -> Path:
    return conf.frame_cache_dir() / storage.frames_folder(
        department=instance.series.study.department, sop_uid=instance.sop_instance_uid
    )


def _window_dir(instance: Instance, window: Window | None) -> Path:
    version = f"{instance.deidentified_sha256[:16]}-{RENDERER}"
    key = DEFAULT_KEY if window is None else window.key.replace("+", "")
    return _instance_dir(instance) / version / key


def _stored_window(folder: Path) -> Window | None:
    try:
        stored = json.loads((folder / _WINDOW).read_text())
    except (FileNotFoundError, ValueError):
        return None
    return Window(stored["center"], stored["width"]) if stored else None


def _order(count: int, first: int) -> list[int]:
    first = min(max(first, 0), count - 1)
    # the asked frame, then outwards from it: a clinician scrolls from where they are
    order = [first]
    for step in range(1, count):
        order += [i for i in (first + step, first - step) if 0 <= i < count]
    return order


def _marker(path: Path) -> dict | None:
    """The queued marker's record ({"queued_at", "started_at"}), {} if unreadable, None if absent."""
    try:
        record = json.loads(path.read_bytes() or b"{}")
    except FileNotFoundError:
        return None
    except ValueError:  # being written, or an older empty marker
        return {"queued_at": _mtime(path)}
    return record if isinstance(record, dict) else {}


def _started(path: Path, started_at: float | None = None) -> float:
    """Record in the marker that a worker is rendering (since `started_at`); returns that time."""
    record = _marker(path) or {}
    started_at = started_at or time.time()
    _write(
        path,
        json.dumps({"queued_at": record.get("queued_at", started_at), "started_at": started_at}).encode(),
    )
    return started_at


def _failed(folder: Path, reason: str) -> int:
    _write(folder / _FAILED, json.dumps({"reason": reason}).encode())
    return 0


def _write(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)  # a trim may have dropped a folder nobody used
    temporary = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    temporary.write_bytes(data)
    os.replace(temporary, path)


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except FileNotFoundError:
        return 0.0


def _mark_used(folder: Path) -> None:
    try:
        if time.time() - folder.stat().st_mtime > USED_TOUCH_SECONDS:
            os.utime(folder)
    except OSError:  # trimmed meanwhile: the frame read is still good
        pass


def _rendering(folder: Path) -> bool:
    return time.time() - _mtime(folder / _QUEUED) < QUEUED_STALE_SECONDS


def _cached_windows(root: Path):
    """(last used, bytes, folder) of every window folder: <department>/<sop uid>/<version>/<window>."""
    for department in _subdirs(root):
        for image in _subdirs(department):
            for version in _subdirs(image):
                for window in _subdirs(version):
                    try:
                        used = window.stat().st_mtime
                        size = sum(entry.stat().st_size for entry in os.scandir(window) if entry.is_file())
                    except OSError:  # removed by a render of a newer version meanwhile
                        continue
                    yield used, size, window


def _subdirs(folder: Path) -> list[Path]:
    try:
        return [Path(entry.path) for entry in os.scandir(folder) if entry.is_dir(follow_symlinks=False)]
    except OSError:
        return []


def _remove_empty(folder: Path, root: Path) -> None:
    """Remove `folder` and its parents up to `root` while they are empty (a render may refill them)."""
    while folder != root and root in folder.parents:
        try:
            folder.rmdir()
        except OSError:
            return
        folder = folder.parent


def _prune(instance: Instance, *, keep: Path) -> None:
    """Drop other versions of the instance's frames and windows beyond the configured number."""
    version_dir = keep.parent
    for other in _instance_dir(instance).iterdir():
        if other != version_dir and other.is_dir():
            shutil.rmtree(other, ignore_errors=True)
    windows = [d for d in version_dir.iterdir() if d.is_dir() and d.name != DEFAULT_KEY]
    windows.sort(key=lambda d: _mtime(d), reverse=True)
    for stale in windows[conf.frame_cache_windows() :]:
        if stale != keep:
            shutil.rmtree(stale, ignore_errors=True)
