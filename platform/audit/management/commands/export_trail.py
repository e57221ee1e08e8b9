"""Export the decision trail, with its hashes, for a regulator to re-verify (see audit.export)."""

from __future__ import annotations

from pathlib import Path

from django.core.management.base import BaseCommand, CommandError

from audit.export import EXPORT_FORMATS, iter_export, parse_moment, stream
from audit.selectors import events_for_export
from audit.services import trail_export_log


class Command(BaseCommand):
    help = (
        "Write trail events (with prev_hash and hash) as JSON Lines or CSV; since inclusive, until exclusive."
    )

    def add_arguments(self, parser):
        parser.add_argument("--since", help="ISO-8601 date or time (UTC unless an offset is given).")
        parser.add_argument("--until", help="ISO-8601 date or time, exclusive.")
        parser.add_argument("--chain", help="Only this chain (default: all).")
        parser.add_argument("--format", dest="export_format", choices=EXPORT_FORMATS, default="jsonl")
        parser.add_argument("--output", help="File to write (default: standard output).")

    def handle(self, *args, since, until, chain, export_format, output, **options):
        try:
            since_moment = parse_moment(since) if since else None
            until_moment = parse_moment(until) if until else None
        except ValueError as error:
            raise CommandError(str(error), returncode=2) from None
        events = events_for_export(None, chain=chain, since=since_moment, until=until_moment)
        trail_export_log(
            actor="cli:export_trail",
            export_format=export_format,
            chain=chain,
            since=since_moment,
            until=until_moment,
        )
        if output:
            target = Path(output)
            with target.open("w", encoding="utf-8", newline="") as handle:
                count = self._write(handle.write, events, export_format)
            self.stdout.write(f"Wrote {count} events to {target}.")
        else:
            self._write(lambda chunk: self.stdout.write(chunk, ending=""), events, export_format)

    @staticmethod
    def _write(write, events, export_format: str) -> int:
        written = 0

        def counted():
            nonlocal written
            for event in stream(events):
                written += 1
                yield event

        for chunk in iter_export(counted(), export_format):
            write(chunk)
        return written
