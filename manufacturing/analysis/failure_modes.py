"""Failure-mode suggestion from short technician text (ISO 14224 failure modes).

A blend of (a) a similarity-weighted k-nearest-neighbour vote over sentence embeddings of past,
labelled observations and (b) a logistic regression on the embeddings plus character n-grams (robust to
the misspellings of field text: "siezedjammed", "leak excessivly"). The mode names themselves join the
examples, so a rare mode is still findable. The embedding function is injected by the caller
(`inference.services.embed` in the product, offline all-MiniLM-L6-v2); without one, character n-grams
alone are used.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

Embed = Callable[[list[str]], list[list[float]]]


def read_labelled(path: str | Path) -> tuple[list[str], list[str]]:
    """`text,label` columns of a CSV (the shared fmc_mwo2kg files); ValueError names what is missing."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"text", "label"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs 'text' and 'label' columns (has {reader.fieldnames})")
        rows = [(r["text"].strip(), r["label"].strip()) for r in reader]
    rows = [(t, label) for t, label in rows if t and label]
    if not rows:
        raise ValueError(f"{path}: no labelled rows")
    return [t for t, _ in rows], [label for _, label in rows]


# Blend weights chosen by 5-fold cross-validation on the training file only (docs/manufacturing.md: the
# candidates and their scores over three shuffles); the neighbour vote gets 1 - regression - svm.
WEIGHTS = {"regression": 0.5, "svm": 0.5}


class FailureModeClassifier:
    """A blend of a k-nearest-neighbour vote over embeddings, a logistic regression on embeddings plus
    character n-grams and a linear SVM on those plus word 1-2-grams (softmax of its margins). The weights
    (`WEIGHTS`) were chosen by cross-validation on the training file; the dev file was not used to choose
    them."""

    def __init__(
        self,
        embed: Embed | None = None,
        *,
        neighbours: int = 10,
        temperature: float = 0.1,
        regression_weight: float = WEIGHTS["regression"],
        svm_weight: float = WEIGHTS["svm"],
        regularisation: float = 10.0,
        svm_regularisation: float = 1.0,
        svm_temperature: float = 0.3,
    ):
        self.embed = embed
        self.neighbours = neighbours
        self.temperature = temperature
        if embed is None:  # no embeddings, no neighbour vote: its share goes to the regression
            regression_weight = max(1.0 - svm_weight, 0.0)
        self.regression_weight = regression_weight
        self.svm_weight = svm_weight
        self.regularisation = regularisation
        self.svm_regularisation = svm_regularisation
        self.svm_temperature = svm_temperature
        self.classes: list[str] = []

    # ---- storage: the fitted state is stored without the embedding function (a process-local model);
    # the loader attaches it again (`attach`), so a stored classifier never names a code path to call
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["uses_embeddings"] = self.embed is not None
        state["embed"] = None
        return state

    def __setstate__(self, state: dict) -> None:
        self.uses_embeddings = state.pop("uses_embeddings", False)
        self.__dict__.update(state)

    def attach(self, embed: Embed | None) -> FailureModeClassifier:
        """Give a loaded classifier its embedding function back (required when it was fitted with one)."""
        if getattr(self, "uses_embeddings", False) and embed is None:
            raise ValueError("this classifier was fitted with embeddings: attach the embedding function")
        self.embed = embed if getattr(self, "uses_embeddings", False) else None
        return self

    def _vectors(self, texts: list[str]) -> np.ndarray:
        if self.embed is None:
            return np.zeros((len(texts), 0))
        return np.asarray(self.embed([t.lower() for t in texts]), dtype=float).reshape(len(texts), -1)

    def fit(self, texts: Sequence[str], labels: Sequence[str]) -> FailureModeClassifier:
        from scipy import sparse
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        if len(texts) != len(labels) or not texts:
            raise ValueError("fit needs as many labels as texts, at least one")
        self.classes = sorted(set(labels))
        texts = [str(t) for t in texts] + [c.lower() for c in self.classes]  # the mode names are examples too
        labels = list(labels) + self.classes
        self._labels = np.array([self.classes.index(label) for label in labels])
        self._embeddings = self._vectors(texts)
        self._chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True, lowercase=True
        )
        features = sparse.hstack(
            [sparse.csr_matrix(self._embeddings), self._chars.fit_transform(texts)]
        ).tocsr()
        self._regression = (
            LogisticRegression(C=self.regularisation, max_iter=3000).fit(features, self._labels)
            if self.regression_weight > 0
            else None
        )
        self._words = self._svm = None
        if self.svm_weight > 0:
            from sklearn.svm import LinearSVC

            self._words = TfidfVectorizer(
                analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True
            )
            features = sparse.hstack([features, self._words.fit_transform(texts)]).tocsr()
            self._svm = LinearSVC(C=self.svm_regularisation).fit(features, self._labels)
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not self.classes:
            raise ValueError("the classifier is not fitted")
        from scipy import sparse

        texts = [str(t) for t in texts]
        vectors = self._vectors(texts)
        probabilities = np.zeros((len(texts), len(self.classes)))
        features = sparse.hstack([sparse.csr_matrix(vectors), self._chars.transform(texts)]).tocsr()
        if self._regression is not None:
            probabilities[:, self._regression.classes_] = self._regression.predict_proba(features)
        svm = np.zeros_like(probabilities)
        if getattr(self, "_svm", None) is not None:
            margins = self._svm.decision_function(
                sparse.hstack([features, self._words.transform(texts)]).tocsr()
            ).reshape(len(texts), -1)
            if margins.shape[1] == 1:  # two classes: one margin for the second
                margins = np.hstack([-margins, margins])
            scaled = np.exp((margins - margins.max(axis=1, keepdims=True)) / self.svm_temperature)
            svm[:, self._svm.classes_] = scaled / scaled.sum(axis=1, keepdims=True)
        svm_weight = getattr(self, "svm_weight", 0.0)
        neighbour_weight = 1.0 - self.regression_weight - svm_weight
        if self.embed is None or neighbour_weight <= 1e-9:
            return self.regression_weight * probabilities + svm_weight * svm
        similarity = vectors @ self._embeddings.T
        votes = np.zeros_like(probabilities)
        for row, scores in enumerate(similarity):
            nearest = np.argsort(-scores)[: self.neighbours]
            weights = np.exp((scores[nearest] - scores[nearest].max()) / self.temperature)
            np.add.at(votes[row], self._labels[nearest], weights)
        votes /= votes.sum(axis=1, keepdims=True)
        return neighbour_weight * votes + self.regression_weight * probabilities + svm_weight * svm

    def method(self) -> str:
        uses = self.embed is not None or getattr(self, "uses_embeddings", False)
        svm_weight = getattr(self, "svm_weight", 0.0)
        parts = []
        neighbours = 1.0 - self.regression_weight - svm_weight
        if uses and neighbours > 1e-9:
            parts.append(
                f"{neighbours:g} x {self.neighbours}-nearest-neighbour vote over all-MiniLM-L6-v2 embeddings"
            )
        features = "embeddings and char n-grams" if uses else "char n-grams"
        parts.append(f"{self.regression_weight:g} x LR on {features}")
        if svm_weight > 0:
            parts.append(f"{svm_weight:g} x linear SVM on {features} and word 1-2-grams (softmax of margins)")
        return " + ".join(parts)

    def suggest(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The k most likely failure modes of `text`, most likely first, with their probabilities."""
        probabilities = self.predict_proba([text])[0]
        order = np.argsort(-probabilities)[:k]
        return [(self.classes[i], round(float(probabilities[i]), 4)) for i in order]


def evaluate(classifier: FailureModeClassifier, texts: Sequence[str], labels: Sequence[str]) -> dict:
    from sklearn.metrics import f1_score

    probabilities = classifier.predict_proba(texts)
    ranked = np.argsort(-probabilities, axis=1)
    names = np.array(classifier.classes)
    truth = np.array(labels)
    top1 = names[ranked[:, 0]]
    return {
        "examples": len(labels),
        "top1": round(float(np.mean(top1 == truth)), 4),
        "top3": round(float(np.mean([t in names[r[:3]] for t, r in zip(truth, ranked, strict=True)])), 4),
        "macro_f1": round(float(f1_score(truth, top1, average="macro", zero_division=0)), 4),
        "unseen_labels": sorted(set(labels) - set(classifier.classes)),
    }


def cross_validate(
    texts: Sequence[str],
    labels: Sequence[str],
    make: Callable[[], FailureModeClassifier],
    *,
    folds: int = 5,
    seed: int = 0,
) -> dict:
    """Top-1 / top-3 of `make()` classifiers over `folds` shuffled folds of one labelled file (the way the
    defaults were chosen: never on the file that is reported)."""
    from sklearn.model_selection import KFold

    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels, dtype=object)
    hits1 = hits3 = 0
    for train, held in KFold(folds, shuffle=True, random_state=seed).split(texts):
        classifier = make().fit(list(texts[train]), list(labels[train]))
        probabilities = classifier.predict_proba(list(texts[held]))
        names = np.array(classifier.classes, dtype=object)
        ranked = names[np.argsort(-probabilities, axis=1)[:, :3]]
        hits1 += int(np.sum(ranked[:, 0] == labels[held]))
        hits3 += int(sum(t in r for t, r in zip(labels[held], ranked, strict=True)))
    return {"folds": folds, "seed": seed, "examples": int(len(labels)),
            "top1": round(hits1 / len(labels), 4), "top3": round(hits3 / len(labels), 4)}  # fmt: skip
