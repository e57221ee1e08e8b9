"""Sanctions name screening, measured: recall, false-positive rate, queries per second.

    python manage.py eval_name_screening --json
    python manage.py eval_name_screening --list L.csv --queries Q.csv --negatives N.csv --threshold 0.82

Row i of the queries file is a variant of row i of the list: recall is the share of queries whose
matches include their own entry. The false-positive rate is the share of negatives (people who are
not on the list) with at least one match. queries_per_s times ``NameIndex.match_many`` on the
queries and negatives together in one process (wall clock); queries_per_cpu_s divides by the
process's CPU time instead (the figure that does not depend on what else shares the machine);
single_queries_per_s calls ``match`` once per name. fpr_shared_surname: names made of a list entry's family name (last token) after the given name of
a synthetic person from the negatives file.
"""

import json
import random
import time
from pathlib import Path

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError

from finance.screening.names import DEFAULT_THRESHOLD, ListEntry, ListFormatError, NameIndex, load_list_csv


def evaluate(index, queries, negatives, *, threshold):
    q_names = [e.name for e in queries]
    n_names = [e.name for e in negatives]
    started, cpu = time.perf_counter(), time.process_time()
    q_matches = index.match_many(q_names, threshold=threshold)
    n_matches = index.match_many(n_names, threshold=threshold)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu
    hits = sum(
        1 for q, ms in zip(queries, q_matches, strict=True) if any(m.entry_id == q.entry_id for m in ms)
    )
    top_wrong = sum(
        1 for q, ms in zip(queries, q_matches, strict=True) if ms and ms[0].entry_id != q.entry_id
    )
    fps = [(n.name, ms[0].entry_name, ms[0].score) for n, ms in zip(negatives, n_matches, strict=True) if ms]
    misses = [
        q.name
        for q, ms in zip(queries, q_matches, strict=True)
        if not any(m.entry_id == q.entry_id for m in ms)
    ]
    return {
        "threshold": threshold,
        "recall": round(hits / max(len(queries), 1), 4),
        "fpr": round(len(fps) / max(len(negatives), 1), 4),
        "top_match_wrong": top_wrong,
        "queries_per_s": round((len(q_names) + len(n_names)) / elapsed, 1),
        "queries_per_cpu_s": round((len(q_names) + len(n_names)) / max(cpu, 1e-9), 1),
        "misses": misses[:20],
        "false_positives": fps[:20],
    }


class Command(BaseCommand):
    help = "Evaluate sanctions name matching: recall at FPR, queries/s (JSON with --json)."

    def add_arguments(self, parser):
        base = Path(settings.SHARED_DATA_DIR) / "sanctions"
        parser.add_argument("--list", default=str(base / "un_list.csv"))
        parser.add_argument("--queries", default=str(base / "un_queries_with_typos.csv"))
        parser.add_argument("--negatives", default=str(base / "negatives_global.csv"))
        parser.add_argument("--threshold", type=float, default=DEFAULT_THRESHOLD)
        parser.add_argument("--sweep", action="store_true", help="also report a threshold sweep")
        parser.add_argument("--json", action="store_true")

    def handle(self, *args, **options):
        try:
            entries = load_list_csv(options["list"])
            queries = load_list_csv(options["queries"])
            negatives = load_list_csv(options["negatives"], id_prefix="neg-")
        except (OSError, ListFormatError) as e:
            raise CommandError(str(e)) from e
        if len(queries) != len(entries):
            raise CommandError(
                "the queries file must have one row per list row (row i is a variant of entry i)"
            )
        started = time.perf_counter()
        index = NameIndex.build(entries)
        build_s = time.perf_counter() - started
        result = evaluate(index, queries, negatives, threshold=options["threshold"])
        names = [e.name for e in queries + negatives]
        started = time.perf_counter()
        for name in names:
            index.match(name, threshold=options["threshold"])
        result["single_queries_per_s"] = round(len(names) / (time.perf_counter() - started), 1)
        result.update(
            {
                "list_entries": len(entries),
                "list_version": index.version,
                "queries": len(queries),
                "negatives": len(negatives),
                "build_s": round(build_s, 3),
            }
        )
        # shared-surname negatives: each list entry's family name (last token) after the given
        # name of a synthetic person who is not on the list; any match is a false positive
        rng = random.Random(0)
        given = [n.name.split()[0] for n in negatives if n.name.isascii() and len(n.name.split()) >= 2]
        shared = [
            ListEntry(f"shared-{i}", f"{rng.choice(given)} {e.name.split()[-1]}")
            for i, e in enumerate(entries)
            if len(e.name.split()) >= 2 and given
        ]
        found = index.match_many([e.name for e in shared], threshold=options["threshold"])
        result["shared_surname_negatives"] = len(shared)
        result["fpr_shared_surname"] = round(sum(1 for ms in found if ms) / max(len(shared), 1), 4)
        result["shared_surname_false_positives"] = [
            (e.name, ms[0].entry_name, ms[0].score) for e, ms in zip(shared, found, strict=True) if ms
        ][:20]
        if options["sweep"]:
            result["sweep"] = [
                {
                    k: v
                    for k, v in evaluate(index, queries, negatives, threshold=t).items()
                    if k in ("threshold", "recall", "fpr")
                }
                for t in (0.74, 0.76, 0.78, 0.8, 0.82, 0.84, 0.86, 0.88, 0.9)
            ]
        if options["json"]:
            self.stdout.write(json.dumps(result, indent=2, ensure_ascii=False))
        else:
            self.stdout.write(
                f"recall {result['recall']}  fpr {result['fpr']}  {result['queries_per_s']} q/s "
                f"(single {result['single_queries_per_s']} q/s) at threshold {result['threshold']}"
            )
