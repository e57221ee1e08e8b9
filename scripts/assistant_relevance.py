"""Calibrate the maintenance assistant's relevance floor: how similar must a past work order's text be
(cosine of the all-MiniLM-L6-v2 embeddings the assistant uses) before it counts as evidence?

Leave-one-out on the shared history, through the assistant's own retrieval (TF-IDF candidates, then the
embedding re-rank): every labelled excavator work order is a query against the whole history (chiller
and excavator, the query left out); for each of its top neighbours we record the cosine and whether the
neighbour carries the query's failure mode. The chiller orders are not queries (each description holds
its code's description word for word, so they would agree trivially), only candidates.

Printed: label agreement per band of cosine and of the raw TF-IDF similarity, the chance rate (two random
labelled excavator orders agreeing), and each band's lift over it. A relevance floor is justified only
where neighbours below it agree about as often as chance. No database: the rows come from the import's
own row readers. Session 15 result (docs/manufacturing.md): every band agrees 2.4x chance or more, so
no floor was set.

usage: .venv/bin/python scripts/assistant_relevance.py [--queries N] [--json]
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--queries", type=int, default=1500, help="labelled excavator orders used as queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()

    sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "suite.settings")
    import django

    django.setup()
    from django.conf import settings
    from sklearn.feature_extraction.text import TfidfVectorizer

    from inference.services import embed
    from manufacturing.services.assistant import LEXICAL_CANDIDATES, NEIGHBOURS
    from manufacturing.services.work_orders import FORMATS

    data = Path(settings.SHARED_DATA_DIR)
    sources = {
        "chiller": data / "work_orders" / "all_wo_with_code_component_events.csv",
        "excavator": data / "failure_modes" / "excavator_work_orders.csv",
    }
    texts, codes, kinds = [], [], []
    for kind, path in sources.items():
        for row in FORMATS[kind](path, "calibration"):
            if not row["failure_mode"]:
                continue
            title, description = row["title"], row["description"]
            # the text the assistant indexes (_labelled_history)
            texts.append(f"{title} {description if description != title else ''}".strip()[:600])
            codes.append(row["failure_mode"])
            kinds.append(kind)
    codes_arr = np.array(codes)
    excavator = np.flatnonzero(np.array(kinds) == "excavator")
    rng = np.random.default_rng(args.seed)
    queries = rng.choice(excavator, size=min(args.queries, len(excavator)), replace=False)

    vectorizer = TfidfVectorizer(ngram_range=(1, 2), min_df=1, sublinear_tf=True, lowercase=True)
    matrix = vectorizer.fit_transform(texts)
    vectors = np.asarray(embed(texts))

    cosines, lexicals, agree, ranks = [], [], [], []
    for q in queries:
        lexical = (matrix @ matrix[q].T).toarray().ravel()
        lexical[q] = -1.0
        order = [i for i in np.argsort(-lexical)[:LEXICAL_CANDIDATES] if lexical[i] > 0]
        if not order:
            continue
        semantic = vectors[order] @ vectors[q]
        top = lexical[order].max() or 1.0
        fused = 0.5 * lexical[order] / top + 0.5 * semantic
        for rank, j in enumerate(np.argsort(-fused)[:NEIGHBOURS]):
            cosines.append(float(semantic[j]))
            lexicals.append(float(lexical[order[j]]))
            agree.append(bool(codes_arr[order[j]] == codes_arr[q]))
            ranks.append(rank)
    cosines, lexicals, agree = np.array(cosines), np.array(lexicals), np.array(agree)
    labels = codes_arr[excavator]
    _, counts = np.unique(labels, return_counts=True)
    base = float(((counts / counts.sum()) ** 2).sum())  # two random labelled excavator orders agree
    report = {
        "queries": int(len(queries)),
        "history": len(texts),
        "neighbours_scored": int(len(cosines)),
        "base_rate": round(base, 3),
        "by_cosine": _bands(cosines, agree, [-1.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 1.01], base),
        "by_lexical": _bands(lexicals, agree, [0.0, 0.1, 0.15, 0.2, 0.3, 0.5, 1.01], base),
        "by_lexical_when_cosine_below_0.4": _bands(
            lexicals[cosines < 0.4], agree[cosines < 0.4], [0.0, 0.1, 0.15, 0.2, 0.3, 0.5, 1.01], base
        ),
    }
    if args.json:
        print(json.dumps(report, indent=2))
        return
    print(
        f"{report['queries']} excavator queries against {report['history']} labelled orders, "
        f"{report['neighbours_scored']} neighbours; chance agreement {base:.3f}"
    )
    for name in ("by_cosine", "by_lexical", "by_lexical_when_cosine_below_0.4"):
        print(name)
        for band in report[name]:
            print(
                f"  {band['band']:>12}  n={band['neighbours']:>6}  agree={band['agree']}  lift={band['lift']}"
            )


def _bands(values, agree, edges, base) -> list[dict]:
    """Label agreement of the neighbours whose score falls in each [low, high) band, and its lift over chance."""
    out = []
    for low, high in zip(edges[:-1], edges[1:], strict=True):
        inside = (values >= low) & (values < high)
        n = int(inside.sum())
        rate = float(agree[inside].mean()) if n else None
        out.append(
            {
                "band": f"[{low:.2f}, {min(high, 1):.2f})",
                "neighbours": n,
                "agree": None if rate is None else round(rate, 3),
                "lift": None if rate is None else round(rate / base, 2),
            }
        )
    return out


if __name__ == "__main__":
    main()
