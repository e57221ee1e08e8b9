"""Rotate key-encryption keys: a new version, every sealed object re-wrapped, the old version retired."""

from __future__ import annotations

import json as json_module
from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from vault.errors import VaultError
from vault.rotation import default_file_roots, rotate_kek, rotate_signing_key, sealed_kek_names


class Command(BaseCommand):
    help = (
        "Rotate KEKs (all the key provider holds, or the NAMEs given): create a new version in the file "
        "key directory or the HSM, re-wrap every sealed database value and file under it, retire the old "
        "version. An interrupted rotation resumes where it stopped. Trailed."
    )

    def add_arguments(self, parser):
        parser.add_argument(
            "names", nargs="*", help="KEK names, e.g. default medical-originals (default: all)."
        )
        parser.add_argument(
            "--files-root",
            action="append",
            type=Path,
            help="Look for sealed files under this folder (repeatable; default: VAULT_SEALED_FILE_ROOTS or VAR_DIR).",
        )
        parser.add_argument("--json", action="store_true", help="Print one JSON report per key.")
        parser.add_argument(
            "--from-local",
            action="store_true",
            help="Moving to an HSM: also re-wrap objects sealed by the local key directory (VAULT_KEY_DIR) "
            "under the new version in the configured provider.",
        )
        parser.add_argument(
            "--signing-key",
            action="append",
            default=[],
            help="Also rotate this signing key (e.g. audit-checkpoints): a new version signs from now on, "
            "the old ones keep verifying what they signed. Repeatable.",
        )

    def handle(
        self,
        *args,
        names: list[str],
        files_root: list[Path] | None,
        json: bool,
        signing_key: list[str],
        from_local: bool,
        **options,
    ):
        for name in signing_key:
            try:
                report = rotate_signing_key(name)
            except VaultError as error:
                raise CommandError(f"Signing key {name!r}: {error}", returncode=1) from None
            self.stdout.write(
                _dumps(report)
                if json
                else f"Signing key {name!r} now at v{report['to_version']} ({report['new_key_id'][:16]}); "
                f"v{report['from_version']} and older keep verifying their signatures."
            )
        if signing_key and not names:
            return
        names = names or sealed_kek_names(include_local=from_local)
        if not names:
            self.stdout.write("The key provider holds no KEK: nothing to rotate.")
            return
        roots = files_root or default_file_roots()
        for name in names:
            try:
                report = rotate_kek(
                    name,
                    file_roots=roots,
                    progress=None if json else self.stdout.write,
                    from_local=from_local,
                )
            except VaultError as error:
                raise CommandError(f"KEK {name!r}: {error}", returncode=1) from None
            if json:
                self.stdout.write(_dumps(report.as_dict()))


def _dumps(data: dict) -> str:
    return json_module.dumps(data, sort_keys=True)
