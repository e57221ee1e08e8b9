"""KEK rotation: a new key version, every sealed object re-wrapped under it, the old version retired.

    rotate_kek(name) -> RotationReport          (manage.py rotate_keys)

1. A new version of KEK `name` is created in the provider (file or HSM): `<name>.v<N>`. From then
   on `seal` wraps new data keys with it (vault.keys.active_kek), in every process.
2. Every sealed object the vault can find is re-wrapped (vault.envelope.rewrap: the data key
   only; no context needed, no data re-encrypted):
   - database columns: every BinaryField of every installed model whose value is a sealed blob
     (compare-and-swap per row, so a value rewritten meanwhile is left to the next run), and every
     base64 sealed blob inside a JSONField's value (e.g. the sealed name matches in finance alert
     evidence; the JSON value is rewritten with only that string replaced, compare-and-swap too);
   - files: every file starting with the sealed magic under VAULT_SEALED_FILE_ROOTS (default:
     VAR_DIR, the key directory excepted), replaced atomically.
   - format 1 blobs (written before December 2026) authenticate their wrapped key with their data,
     so they are re-sealed instead (vault.envelope.reseal: opened with their context, sealed again
     in format 2 under a fresh data key). The vault cannot guess a context: the app that sealed
     a column or a file lends it (`register_format1_context`); without one the blob is counted
     as `left_format1`, with its place, and stays under the retired version;
   - objects the scan above cannot rewrite in place come from sources the apps above register
     (`register_sealed_source`): the trail's sealed payload texts, which are append-only and
     hashed, are re-wrapped into a side table that audit.sealing opens instead (see there); other
     sealed blobs in trail payloads are re-wrapped into SealedCopy (`store_copy`), which
     vault.envelope.open_sealed opens once the original's KEK version is gone.
3. The older versions are retired: never used to seal again, kept in the provider to open what
   was left (see the report). Destroying a retired version is a separate, deliberate step
   (`provider.destroy_kek`), safe once a finished rotation reports nothing left under it.

Each rotation is a KeyRotation row: a run interrupted half-way (crash, Ctrl-C) leaves it
unfinished, and the next run resumes it (same new version) instead of creating another. Start
and end are written to the decision trail (actor "system:vault", via vault.keys' listener).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from django.apps import apps
from django.conf import settings
from django.db import models, transaction
from django.db.models.functions import Cast
from django.utils import timezone

from vault.envelope import MAGIC, reseal, rewrap, sealed_header
from vault.errors import KeyNotFoundError, SealedDataError, TamperedError, VaultError
from vault.keys import (
    LocalKeyProvider,
    get_key_provider,
    kek_versions,
    key_directory,
    signing_key_versions,
    split_kek_name,
    trail_key_event,
    validate_key_name,
    versioned_kek_name,
)
from vault.models import KeyRotation, SealedCopy

Progress = Callable[[str], None]


@dataclass(frozen=True)
class SealedObject:
    """One sealed blob found somewhere, and how to replace it.

    write(new) stores the re-wrapped blob and returns False when the object changed meanwhile
    (left to the next run). context: what it was sealed with, when known (format 1 needs it).
    """

    place: str
    blob: bytes
    write: Callable[[bytes], bool]
    context: bytes | None = None


# place ("app_label.Model.field", or FILES for sealed files) -> resolver(row pk or Path) -> context
ContextResolver = Callable[[object], bytes | None]
FILES = "files"
_FORMAT1_CONTEXTS: dict[str, list[ContextResolver]] = {}
_SOURCES: dict[str, Callable[[], Iterable[SealedObject]]] = {}


def register_format1_context(place: str, resolver: ContextResolver | bytes) -> None:
    """Lend the rotation the context a format 1 blob in `place` was sealed with.

    place: "app_label.Model.field" of a BinaryField, resolver(pk) -> context; or FILES, where
    every resolver is asked resolver(path) -> context, or None when the file is not its own.
    A constant context may be given as bytes. Apps call this in AppConfig.ready().
    """
    if isinstance(resolver, bytes | bytearray):
        constant = bytes(resolver)
        resolver = lambda _key, _constant=constant: _constant  # noqa: E731
    resolvers = _FORMAT1_CONTEXTS.setdefault(place, [])
    if resolver not in resolvers:
        resolvers.append(resolver)


def unregister_format1_context(place: str, resolver: ContextResolver) -> None:
    resolvers = _FORMAT1_CONTEXTS.get(place, [])
    if resolver in resolvers:
        resolvers.remove(resolver)


def register_sealed_source(key: str, source: Callable[[], Iterable[SealedObject]]) -> None:
    """Sealed objects that the column and file scan cannot rewrite in place (e.g. the trail's
    payload texts): source() yields a SealedObject for each one still to re-wrap, whose write
    stores the new blob where its owner reads it from. Apps call this in AppConfig.ready()."""
    _SOURCES[key] = source


def format1_context_for(place: str, key: object) -> bytes | None:
    """The context an app lent for a format 1 blob in `place` (row pk or path), or None."""
    return _format1_context(place, key)


def _format1_context(place: str, key: object) -> bytes | None:
    for resolver in _FORMAT1_CONTEXTS.get(place, []):
        context = resolver(key)
        if context is not None:
            return bytes(context)
    return None


@dataclass
class RotationReport:
    key_name: str
    from_version: int
    to_version: int
    new_key_id: str
    resumed: bool
    rewrapped: int = 0
    already_current: int = 0
    resealed_format1: int = 0  # format 1 blobs sealed again in format 2 (counted in rewrapped too)
    left_format1: int = 0  # format 1 blobs whose context no app lent: still under the old version
    left_places: dict[str, int] = field(default_factory=dict)  # where the left_format1 ones are
    failed_format1: int = 0  # format 1 blobs that did not open with the lent context (tampered?)
    failed_places: dict[str, int] = field(default_factory=dict)
    other_provider: int = 0  # sealed by another key provider (see from_local)
    skipped_changed: int = 0  # rewritten by the application meanwhile: the next run takes them
    places: dict[str, int] = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {key: value for key, value in self.__dict__.items() if not key.startswith("_")}


def sealed_kek_names(*, include_local: bool = False) -> list[str]:
    """The KEK names (without version) the provider holds (and the local key directory, when moving)."""
    physical = list(get_key_provider().kek_names())
    if include_local:
        physical += LocalKeyProvider(key_directory()).kek_names()
    return sorted({split_kek_name(name)[0] for name in physical})


def rotate_kek(name: str, *, file_roots: list[Path] | None = None, progress: Progress | None = None,
               stop_after: int | None = None, from_local: bool = False) -> RotationReport:  # fmt: skip
    """Rotate KEK `name` (resuming an unfinished rotation of it). stop_after: re-wrap at most this
    many objects and return with the rotation unfinished (how tests interrupt one).

    from_local: the configured provider is another one (an HSM) and objects sealed by the local key
    directory (VAULT_KEY_DIR) move under the new version in it; the local files are then no longer
    needed for them. Without it, objects of another provider are counted and left alone.
    """
    validate_key_name(name)
    provider = get_key_provider()
    source = _local_source(provider) if from_local else None
    say = progress or (lambda message: None)
    rotation = KeyRotation.objects.filter(key_name=name, finished_at__isnull=True).first()
    resumed = rotation is not None
    if rotation is None:
        versions = kek_versions(provider, name)
        if not versions and source is None:
            raise KeyNotFoundError(f"The key provider holds no KEK named {name!r}: nothing to rotate.")
        current = versions[-1] if versions else 0  # 0: the first version in this provider (a move)
        with transaction.atomic():
            new_kek = provider.kek(versioned_kek_name(name, current + 1))  # creation is trailed
            rotation = KeyRotation.objects.create(
                key_name=name, from_version=current, to_version=current + 1, new_key_id=new_kek.key_id
            )
            trail_key_event(
                action="key.rotate_start",
                resource_type="kek",
                resource_id=name,
                payload={"from_version": current, "to_version": current + 1, "new_key_id": new_kek.key_id},
            )
    new_kek = provider.kek(versioned_kek_name(name, rotation.to_version), create=False)
    if new_kek.key_id != rotation.new_key_id:
        raise VaultError(
            f"KEK {new_kek.name!r} in the provider is not the one rotation #{rotation.pk} created "
            f"(fingerprint {new_kek.key_id}, expected {rotation.new_key_id})."
        )
    report = RotationReport(name, rotation.from_version, rotation.to_version, new_kek.key_id, resumed)
    say(
        f"{'Resuming' if resumed else 'Rotating'} KEK {name!r}: v{rotation.from_version} -> v{rotation.to_version}."
    )

    for item in _sealed_objects(file_roots):
        if stop_after is not None and report.rewrapped >= stop_after:
            _save_progress(rotation, report)
            say(f"Stopped after {report.rewrapped} objects; run again to resume.")
            return report
        place, blob, write = item.place, item.blob, item.write
        try:
            header = sealed_header(blob)
        except SealedDataError:
            continue
        logical, version = split_kek_name(header["kek"])
        if logical != name:
            continue
        foreign = header["provider"] != provider.name
        if foreign and (source is None or header["provider"] != source.name):
            report.other_provider += 1
            continue
        if not foreign and version >= rotation.to_version:
            report.already_current += 1
            continue
        origin = source if foreign else None
        if header["version"] == 1:
            if item.context is None:
                report.left_format1 += 1
                report.left_places[place] = report.left_places.get(place, 0) + 1
                continue
            try:
                new_blob = reseal(blob, kek=new_kek, context=item.context, source_provider=origin)
            except TamperedError:  # altered, or the lent context is wrong: reported, left as it is
                report.failed_format1 += 1
                report.failed_places[place] = report.failed_places.get(place, 0) + 1
                continue
        else:
            new_blob = rewrap(blob, kek=new_kek, source_provider=origin)
        if write(new_blob):
            report.rewrapped += 1
            report.resealed_format1 += header["version"] == 1
            report.places[place] = report.places.get(place, 0) + 1
            if report.rewrapped % 200 == 0:
                _save_progress(rotation, report)
                say(f"  {report.rewrapped} re-wrapped ...")
        else:
            report.skipped_changed += 1

    with transaction.atomic():
        _save_progress(rotation, report)
        rotation.finished_at = timezone.now()
        rotation.save(update_fields=["finished_at"])
        trail_key_event(
            action="key.rotate",
            resource_type="kek",
            resource_id=name,
            payload={
                "from_version": rotation.from_version,
                "to_version": rotation.to_version,
                "new_key_id": new_kek.key_id,
                "retired_versions": list(range(1, rotation.to_version)),
                "rewrapped": rotation.rewrapped,
                "resealed_format1": report.resealed_format1,
                "left_format1": report.left_format1,
                "left_places": report.left_places,
                "failed_format1": report.failed_format1,
                "failed_places": report.failed_places,
                "skipped_changed": report.skipped_changed,
                "other_provider": report.other_provider,
                "moved_from": source.name if source is not None else None,
                "resumed": resumed,
            },
        )
    for place, count in sorted(report.places.items()):
        say(f"  {place}: {count} re-wrapped")
    say(
        f"KEK {name!r} now at v{rotation.to_version} ({new_kek.key_id[:16]}); v1..v{rotation.to_version - 1} "
        f"retired. Re-wrapped {report.rewrapped} ({rotation.rewrapped} in all runs), already current {report.already_current}, "
        f"format 1 re-sealed {report.resealed_format1}, format 1 left {report.left_format1}, "
        f"changed meanwhile {report.skipped_changed}."
    )
    for place, count in sorted(report.left_places.items()):
        say(f"  {place}: {count} format 1 left under the retired version (no context registered)")
    for place, count in sorted(report.failed_places.items()):
        say(
            f"  {place}: {count} format 1 did NOT open with the registered context (altered?); left as they are"
        )
    return report


def _local_source(provider):
    if provider.name == LocalKeyProvider.name:
        raise VaultError(
            "--from-local moves sealed objects into another provider; the configured one is local."
        )
    return LocalKeyProvider(key_directory())


def _save_progress(rotation: KeyRotation, report: RotationReport) -> None:
    """Add this run's re-wraps not yet counted to the rotation's row."""
    delta = report.rewrapped - getattr(report, "_saved", 0)
    if delta:
        KeyRotation.objects.filter(pk=rotation.pk).update(rewrapped=models.F("rewrapped") + delta)
        report._saved = report.rewrapped
    rotation.refresh_from_db(fields=["rewrapped"])


# --- where sealed objects live ------------------------------------------------------------------


def _sealed_objects(file_roots: list[Path] | None) -> Iterator[SealedObject]:
    """Every sealed object: database columns, JSON values, files, then the registered sources."""
    yield from _sealed_columns()
    yield from _sealed_json_values()
    yield from _sealed_files(file_roots)
    for source in list(_SOURCES.values()):
        yield from source()


def _columns_of(field_class):
    """(place, column, manager) for every concrete column of `field_class` in a managed model."""
    for model in apps.get_models():
        if model._meta.proxy or not model._meta.managed:
            continue
        for column in model._meta.concrete_fields:
            if isinstance(column, field_class):
                yield f"{model._meta.label}.{column.name}", column, model._base_manager


def _sealed_columns():
    for place, column, manager in _columns_of(models.BinaryField):
        rows = manager.exclude(**{f"{column.name}__isnull": True}).values_list("pk", column.attname)
        for pk, value in rows.iterator(chunk_size=500):
            blob = bytes(value) if value is not None else b""
            if not blob.startswith(MAGIC):
                continue

            def write(new: bytes, *, _pk=pk, _old=blob, _column=column, _manager=manager) -> bool:
                return bool(
                    _manager.filter(pk=_pk, **{_column.attname: _old}).update(**{_column.attname: new})
                )

            context = _format1_context(place, pk) if _is_format1(blob) else None
            yield SealedObject(place, blob, write, context)


# A sealed blob in JSON is its base64 text: b"SVLT" + a version byte below 16 always starts so.
SEALED_BASE64_PREFIX = base64.b64encode(MAGIC + b"\x00").decode("ascii")[:6]


def sealed_strings(value, path: tuple = ()) -> Iterator[tuple[tuple, bytes]]:
    """(path, blob) for every string inside a JSON value that is a base64 sealed blob."""
    if isinstance(value, dict):
        for key, item in value.items():
            yield from sealed_strings(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from sealed_strings(item, (*path, index))
    elif isinstance(value, str) and value.startswith(SEALED_BASE64_PREFIX):
        try:
            blob = base64.b64decode(value, validate=True)
        except (binascii.Error, ValueError):
            return
        if blob.startswith(MAGIC):
            yield path, blob


def _value_at(value, path: tuple):
    for step in path:
        value = value[step]
    return value


def _sealed_json_values():
    for place, column, manager in _columns_of(models.JSONField):
        rows = (
            manager.annotate(_sealed_text=Cast(column.name, models.TextField()))
            .filter(_sealed_text__contains=SEALED_BASE64_PREFIX)
            .values_list("pk", column.attname)
            .order_by("pk")
        )
        for pk, value in rows.iterator(chunk_size=500):
            for path, blob in sealed_strings(value):

                def write(
                    new: bytes, *, _pk=pk, _path=path, _old=blob, _column=column, _manager=manager
                ) -> bool:
                    old_text = base64.b64encode(_old).decode("ascii")
                    with transaction.atomic():
                        current = (
                            _manager.select_for_update()
                            .filter(pk=_pk)
                            .values_list(_column.attname, flat=True)
                            .first()
                        )
                        try:
                            if _value_at(current, _path) != old_text:
                                return False
                        except (KeyError, IndexError, TypeError):
                            return False
                        container = _value_at(current, _path[:-1])
                        container[_path[-1]] = base64.b64encode(new).decode("ascii")
                        return bool(_manager.filter(pk=_pk).update(**{_column.attname: current}))

                context = _format1_context(place, pk) if _is_format1(blob) else None
                yield SealedObject(place, blob, write, context)


def has_copy(blob: bytes) -> bool:
    return SealedCopy.objects.filter(original_sha256=hashlib.sha256(blob).hexdigest()).exists()


def store_copy(place: str, original: bytes, new: bytes) -> bool:
    """Keep `new` (the re-wrapped `original`) as the copy vault.envelope.open_sealed falls back to;
    False when a copy exists already (another run made it)."""
    _, created = SealedCopy.objects.get_or_create(
        original_sha256=hashlib.sha256(original).hexdigest(), defaults={"place": place[:160], "blob": new}
    )
    return created


def _sealed_files(file_roots: list[Path] | None):
    roots = file_roots if file_roots is not None else default_file_roots()
    keys = key_directory().resolve()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            continue
        for path in sorted(root.rglob("*")):
            if path.is_symlink() or not path.is_file() or keys in path.resolve().parents:
                continue
            with path.open("rb") as handle:
                if handle.read(len(MAGIC)) != MAGIC:
                    continue
            blob = path.read_bytes()

            def write(new: bytes, *, _path=path, _old=blob) -> bool:
                if _path.read_bytes() != _old:
                    return False
                temporary = _path.with_name(f".{_path.name}.rotate.tmp")
                temporary.write_bytes(new)
                temporary.chmod(_path.stat().st_mode & 0o777)
                temporary.replace(_path)  # atomic: readers see the old blob or the new one
                return True

            context = _format1_context(FILES, path) if _is_format1(blob) else None
            yield SealedObject(f"files under {root}", blob, write, context)


def _is_format1(blob: bytes) -> bool:
    return blob[len(MAGIC) : len(MAGIC) + 1] == b"\x01"


def default_file_roots() -> list[Path]:
    configured = getattr(settings, "VAULT_SEALED_FILE_ROOTS", None)
    if configured:
        return [Path(root) for root in configured]
    roots = [Path(settings.VAR_DIR).resolve()]
    media = Path(getattr(settings, "MEDIA_ROOT", "") or roots[0]).resolve()
    if roots[0] != media and roots[0] not in media.parents:
        roots.append(media)
    return roots


def rotate_signing_key(name: str) -> dict:
    """A new version of signing key `name` signs from now on; older versions stay to verify what
    they signed (a checkpoint names the version it was signed with). Trailed."""
    validate_key_name(name)
    provider = get_key_provider()
    versions = signing_key_versions(provider, name)
    if not versions:
        raise KeyNotFoundError(f"The key provider holds no signing key named {name!r}: nothing to rotate.")
    with transaction.atomic():
        new_key = provider.signing_key(versioned_kek_name(name, versions[-1] + 1))  # creation is trailed
        report = {
            "key_name": name,
            "from_version": versions[-1],
            "to_version": versions[-1] + 1,
            "new_key_id": new_key.key_id,
            "algorithm": new_key.algorithm,
            "retired_versions": versions,
        }
        trail_key_event(action="key.rotate", resource_type="signing_key", resource_id=name, payload=report)
    return report
