"""Recompute the decision trail and report the first place it breaks.

Exit status 0 when every chain verifies (the number of events verified is printed), 1 when one
does not (the first bad sequence number or checkpoint is named), 2 on bad usage.
"""

from __future__ import annotations

import logging

from django.core.management.base import BaseCommand, CommandError

from audit.selectors import chain_names
from audit.verification import verify_chain

logger = logging.getLogger("audit.verify_trail")


class Command(BaseCommand):
    help = "Verify the hash chain and the signed checkpoints of the decision trail."

    def add_arguments(self, parser):
        parser.add_argument("--chain", help="Verify only this chain (default: all chains).")
        parser.add_argument(
            "--progress-every",
            type=int,
            default=100_000,
            metavar="N",
            help="Log a progress line every N events (default 100000).",
        )

    def handle(self, *args, chain: str | None, progress_every: int, **options):
        if progress_every < 1:
            raise CommandError("--progress-every must be at least 1.", returncode=2)
        known = chain_names()
        if chain and chain not in known:
            raise CommandError(
                f"No chain named {chain!r}. Known chains: {', '.join(known) or 'none'}.", returncode=2
            )
        chains = [chain] if chain else known
        if not chains:
            self.stdout.write("The trail is empty: 0 events verified.")
            return

        total = 0
        for name in chains:

            def progress(done: int, count: int, name: str = name) -> None:
                logger.info("chain %r: %d of %d events verified", name, done, count)

            result = verify_chain(name, progress=progress, progress_every=progress_every)
            if not result.ok:
                where = f" at sequence {result.first_bad_sequence}" if result.first_bad_sequence else ""
                raise CommandError(f"Chain {name!r} is BROKEN{where}: {result.problem.message}", returncode=1)
            total += result.events_verified
            self.stdout.write(
                f"Chain {name!r}: {result.events_verified} events verified, "
                f"{result.checkpoints_verified} signed checkpoints valid."
            )
        self.stdout.write(self.style.SUCCESS(f"OK: {total} events verified in {len(chains)} chain(s)."))
