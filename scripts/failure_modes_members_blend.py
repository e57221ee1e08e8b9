"""Session 10 selection of the failure-mode recipe, step 2: out-of-fold top-1 / top-3 / macro-F1 on the
training file of recipes built from the members saved by scripts/failure_modes_members_cv.py (same
shuffle, one file per fine-tuning configuration): each member alone (the LR + SVM blend of
`FailureModeClassifier` on its tuned embeddings), the mean of several members' blends (a seed ensemble),
the blend on their concatenated embeddings, and either with a share for the neighbour vote or the cosine
heads. Means over the shuffles given; nothing here reads the dev file.

usage: .venv/bin/python scripts/failure_modes_members_blend.py [--singles] A.npz [B.npz ...]
(--singles: each member alone, with the neighbour vote or head, no ensembles)
"""

import itertools
import json
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "platform"), str(ROOT / "scripts")]


def components(texts, labels, classes, fold, vectors, prompts, options=None):
    """Out-of-fold LR, SVM and 10-neighbour-vote probabilities (columns: `classes`) for one embedding per
    fold (`vectors[k]`: the rows of `prompts`)."""
    from manufacturing.analysis.failure_modes import FailureModeClassifier

    out = {k: np.zeros((len(labels), len(classes))) for k in ("lr", "svm", "knn")}
    for k in range(int(fold.max()) + 1):
        table = dict(zip(prompts, vectors[k], strict=True))

        def embed(batch, table=table):
            return [table[p] for p in batch]

        train, held = fold != k, fold == k
        fitted = FailureModeClassifier(embed, tuning=None, **(options or {})).fit(
            list(texts[train]), list(labels[train])
        )
        columns = [list(classes).index(c) for c in fitted.classes]
        for name, (r, s) in (("lr", (1.0, 0.0)), ("svm", (0.0, 1.0)), ("knn", (0.0, 0.0))):
            fitted.regression_weight, fitted.svm_weight = r, s
            out[name][np.ix_(np.flatnonzero(held), columns)] = fitted.predict_proba(list(texts[held]))
    return out


def main(files: list[str], singles: bool = False) -> None:
    from failure_modes_members_cv import prompts_of
    from sklearn.metrics import f1_score

    by_shuffle = defaultdict(list)
    for name in files:
        saved = np.load(name, allow_pickle=True)  # our own files: labels are stored as objects
        by_shuffle[int(saved["shuffle"])].append((Path(name).stem, saved))
    results = defaultdict(list)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        for shuffle, members in sorted(by_shuffle.items()):
            first = members[0][1]
            texts, labels, classes, fold = first["texts"], first["labels"], first["classes"], first["fold"]

            def score(p, labels=labels, classes=classes):
                ranked = classes[np.argsort(-p, axis=1)[:, :3]]
                top3 = np.mean([t in r for t, r in zip(labels, ranked, strict=True)])
                return np.mean(ranked[:, 0] == labels), top3, f1_score(labels, ranked[:, 0], average="macro")

            parts = {}
            options = {}
            for name, saved in members:
                options[name] = json.loads(str(saved["options"])) if "options" in saved.files else {}
                prompts = prompts_of(texts, classes, options[name].get("descriptions", False))
                parts[name] = components(
                    texts, labels, classes, fold, saved["vectors"], prompts, options[name]
                )
                parts[name]["head"] = saved["head"]
            names = [n for n, _ in members]
            groups = [(n,) for n in names]
            if not singles:  # ensembles of members with the same options
                groups += [
                    g
                    for size in (2, 3)
                    for g in itertools.combinations(names, size)
                    if all(options[n] == options[g[0]] for n in g)
                ]
            for group in groups:
                blend = np.mean([0.5 * parts[n]["lr"] + 0.5 * parts[n]["svm"] for n in group], axis=0)
                knn = np.mean([parts[n]["knn"] for n in group], axis=0)
                head = np.mean([parts[n]["head"] for n in group], axis=0)
                label = "+".join(n.split("_", 1)[1] for n in group)
                results[f"mean {label}"].append(score(blend))
                for w in (0.1, 0.2, 0.3, 0.4, 0.5):
                    results[f"mean {label} knn {w}"].append(score((1 - w) * blend + w * knn))
                    results[f"mean {label} head {w}"].append(score((1 - w) * blend + w * head))
                if len(group) > 1:  # one LR + SVM on the members' concatenated embeddings
                    stacked = np.concatenate([dict(members)[n]["vectors"] for n in group], axis=2) / np.sqrt(
                        len(group)
                    )
                    prompts = prompts_of(texts, classes, options[group[0]].get("descriptions", False))
                    c = components(texts, labels, classes, fold, stacked, prompts, options[group[0]])
                    cat = 0.5 * c["lr"] + 0.5 * c["svm"]
                    results[f"concat {label}"].append(score(cat))
                    for w in (0.1, 0.2, 0.3):
                        results[f"concat {label} knn {w}"].append(score((1 - w) * cat + w * c["knn"]))
            print("shuffle", shuffle, "done", flush=True)
    for name, per in sorted(results.items(), key=lambda item: -np.mean([p[0] for p in item[1]])):
        mean = np.mean(per, axis=0)
        print(
            f"{mean[0]:.4f} {mean[1]:.4f} {mean[2]:.4f}  {name:48s} top-1 "
            + " ".join(f"{p[0]:.3f}" for p in per)
            + "  top-3 "
            + " ".join(f"{p[1]:.3f}" for p in per)
        )


if __name__ == "__main__":
    arguments = sys.argv[1:]
    main([a for a in arguments if a != "--singles"], singles="--singles" in arguments)
