"""Recompute an alert from its trail event alone: `replay_alert ID [--json]`. Exit 1 when it differs."""

from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError


class Command(BaseCommand):
    help = "Recompute an alert from the decision trail alone and say whether it is identical."

    def add_arguments(self, parser):
        parser.add_argument("alert_id", type=int)
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, alert_id, json: bool = False, **options):
        from finance.services import FinanceRefused, alert_replay

        try:
            result = alert_replay(alert_id=alert_id)
        except FinanceRefused as error:
            raise CommandError(str(error)) from error
        if json:
            self.stdout.write(_dumps(result))
        else:
            verdict = "identical" if result.identical else "DIFFERENT (" + ", ".join(result.differences) + ")"
            self.stdout.write(
                f"alert {alert_id}: {verdict}; trail event #{result.event_sequence}, "
                f"hash {'verified' if result.event_hash_ok else 'BROKEN'}; recorded risk "
                f"{result.recorded['risk']} {result.recorded['decision']}, recomputed "
                f"{result.recomputed['risk']} {result.recomputed['decision']}"
            )
        if not result.identical:
            raise SystemExit(1)


def _dumps(result) -> str:
    return json.dumps(
        {
            "alert_id": result.alert_id,
            "identical": result.identical,
            "event_sequence": result.event_sequence,
            "event_hash_ok": result.event_hash_ok,
            "differences": result.differences,
            "recorded": result.recorded,
            "recomputed": result.recomputed,
        },
        indent=2,
        sort_keys=True,
    )
