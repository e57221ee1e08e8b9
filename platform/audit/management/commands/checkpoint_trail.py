"""Sign a checkpoint of each chain that grew since its last checkpoint (also run periodically by Celery)."""

from __future__ import annotations

from django.core.management.base import BaseCommand, CommandError

from audit.services import TrailIntegrityError, checkpoint_all_chains, checkpoint_create


class Command(BaseCommand):
    help = "Sign the current head of the decision trail's chains with the vault's signing key."

    def add_arguments(self, parser):
        parser.add_argument("--chain", help="Checkpoint only this chain (default: every chain that grew).")

    def handle(self, *args, chain: str | None, **options):
        try:
            checkpoints = [checkpoint_create(chain=chain)] if chain else checkpoint_all_chains()
        except TrailIntegrityError as error:
            raise CommandError(str(error), returncode=1) from None
        checkpoints = [checkpoint for checkpoint in checkpoints if checkpoint]
        if not checkpoints:
            self.stdout.write("No chain grew since its last checkpoint: nothing to sign.")
        for checkpoint in checkpoints:
            self.stdout.write(
                f"Checkpoint #{checkpoint.pk}: chain {checkpoint.chain!r} at {checkpoint.size} events, "
                f"head {checkpoint.head_hash[:16]}..., signed with {checkpoint.algorithm} key "
                f"{checkpoint.key_name!r} ({checkpoint.key_id[:16]})."
            )
