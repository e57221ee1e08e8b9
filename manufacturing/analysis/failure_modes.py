"""Failure-mode suggestion from short technician text (ISO 14224 failure modes).

A blend of a logistic regression on sentence embeddings plus character n-grams (robust to the
misspellings of field text: "siezedjammed", "leak excessivly") and a linear SVM on those plus word
1-2-grams; a similarity-weighted k-nearest-neighbour vote over the embeddings takes a share (0.3 since
session 10). The mode names themselves join the examples, so a rare mode is still findable, and so do
their ISO 14224 descriptions (`MODE_DESCRIPTIONS`, "flow restriction", since session 10). Options (all chosen by
cross-validation on the training file, docs/manufacturing.md): the text can be normalised before it is
embedded (`field_text.Normaliser`: shorthand, spelling, joined words), embedded inside a template, and
weakly labelled examples (`weak_examples`: excavator work orders labelled by keyword rules) can join the
fit at a lower weight. The embedding function is injected by the caller (`inference.services.embed` in
the product, offline all-MiniLM-L6-v2); without one, n-grams alone are used.
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


# The excavator work orders' FM column (keyword rules, MaintKG) where it names the same ISO 14224 mode;
# its other labels (Unspecified, Fluid Levels, Hours, Seized, Warning Light, Fail to Stop: an engine
# "shutting down" is not a failure to stop on demand) and multi-label rows are left out.
EXCAVATOR_MODES = {
    "Leak": "Leaking",
    "Structural Integrity": "Structural deficiency",
    "Missing / Loose": "Minor in-service problems",
    "Over Temp": "Overheating",
    "Smoke / Burning": "Overheating",
    "Fail to Start": "Failure to start on demand",
    "Fail to Start_Unspecified": "Failure to start on demand",
    "Contamination": "Contamination",
    "Noise": "Noise",
}


def weak_examples(path: str | Path) -> tuple[list[str], list[str]]:
    """(texts, ISO mode names) of the excavator work orders whose rule-assigned FM maps onto a mode."""
    with open(path, encoding="utf-8-sig", newline="") as handle:
        reader = csv.DictReader(handle)
        if not reader.fieldnames or not {"OriginalShorttext", "FM"} <= set(reader.fieldnames):
            raise ValueError(f"{path}: needs 'OriginalShorttext' and 'FM' columns")
        rows = [(r["OriginalShorttext"].strip(), EXCAVATOR_MODES.get(r["FM"].strip())) for r in reader]
    rows = [(t, mode) for t, mode in rows if t and mode]
    return [t for t, _ in rows], [mode for _, mode in rows]


# ISO 14224 (Table B.15, "Description" column; Electrical from the failure mechanisms of Table B.2) words
# for each mode: with `descriptions` on they join the examples of their mode, as the mode names do, so a
# mode's meaning in the standard is an example too (short phrases, each one example).
MODE_DESCRIPTIONS = {
    "Abnormal instrument reading": ("false alarm", "faulty instrument indication"),
    "Breakdown": ("serious damage", "seizure", "breakage"),
    "Contamination": ("contaminated fluid", "contaminated lubrication oil", "contaminated surface"),
    "Electrical": ("electrical failure", "short circuiting", "open circuit", "no power", "earth fault"),
    "Erratic output": ("oscillating", "hunting", "instability"),
    "Fail to close": ("does not close on demand",),
    "Fail to function": ("does not function on demand",),
    "Fail to open": ("does not open on demand",),
    "Failure to start on demand": ("does not start on demand",),
    "Failure to stop on demand": ("does not stop on demand", "does not interrupt the sequence"),
    "Failure to rotate": ("does not rotate",),
    "High output": ("overspeed", "output above acceptance"),
    "Leaking": (
        "external leakage of process medium",
        "external leakage of utility medium",
        "internal leakage",
    ),
    "Low output": ("delivery below acceptance", "output below acceptance"),
    "Minor in-service problems": ("loose items", "discoloration", "dirt"),
    "Noise": ("abnormal noise",),
    "Other": ("failure mode not covered",),
    "Overheating": ("overheating machine parts", "hot exhaust", "hot cooling water"),
    "Plugged / choked": ("flow restriction",),
    "Spurious stop": ("unexpected shutdown",),
    "Structural deficiency": ("material damage", "cracks", "wear", "fracture", "corrosion"),
    "Vibration": ("abnormal vibration",),
}


def anchor_examples(classes: Sequence[str], descriptions: bool = False) -> tuple[list[str], list[str]]:
    """The examples every fit gets for its modes: each mode's name (lower case) and, with `descriptions`,
    its ISO 14224 description phrases (`MODE_DESCRIPTIONS`; a mode not in it: its name only)."""
    texts, labels = [], []
    for mode in classes:
        phrases = (mode.lower(), *(MODE_DESCRIPTIONS.get(mode, ()) if descriptions else ()))
        texts += phrases
        labels += [mode] * len(phrases)
    return texts, labels


# Blend weights chosen by cross-validation on the training file only (docs/manufacturing.md: the
# candidates and their scores over repeated stratified folds); the neighbour vote gets 1 - the others.
# Session 10: 0.35 / 0.35 and 0.3 for the 10-neighbour vote over the tuned embeddings (with the mode
# descriptions among the examples; before it 0.5 / 0.5 and no vote).
WEIGHTS = {"regression": 0.35, "svm": 0.35}
# The sentence the text is embedded in (short fragments such as "hole" embed better inside one).
TEMPLATE = "the equipment is {}"
# The weight of a weakly labelled example (`weak_examples`) in the default fit; 0: not used.
WEAK_WEIGHT = 0.0
# Fine-tuning a copy of the embedding model on the training text (`encoder_tuning.TunedEncoder`
# options) when the caller names the base model's directory; None: the base embeddings as they are.
# Session 9, chosen by stratified 5-fold cross-validation on the training file (docs/manufacturing.md):
# the top 2 of the 6 layers, 4 epochs, learning rate 1e-4; one torch thread while it trains.
TUNING: dict | None = {"epochs": 4, "layers": 2, "learning_rate": 1e-4, "threads": 1}
# The share of the tuned encoder's own cosine head in the blend (the other members scaled by 1 - it).
HEAD_WEIGHT = 0.0
# Whether each mode's ISO 14224 description phrases (`MODE_DESCRIPTIONS`) join the examples (session 10,
# by cross-validation on the training file).
DESCRIPTIONS = True


class FailureModeClassifier:
    """A blend of a k-nearest-neighbour vote over embeddings, a logistic regression on embeddings plus
    character n-grams and a linear SVM on those plus word 1-2-grams (softmax of its margins). The
    defaults were chosen by cross-validation on the training file; the dev file was not used."""

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
        normalise: bool = False,
        normalised_chars: bool = False,
        template: str = TEMPLATE,
        embedding_scale: float = 1.0,
        char_ngrams: tuple[int, int] = (2, 5),
        class_weight: str | None = None,
        encoder_dir: str | Path | None = None,
        tuning: dict | None = TUNING,
        head_weight: float = HEAD_WEIGHT,
        descriptions: bool = DESCRIPTIONS,
    ):
        self.embed = embed
        self.neighbours = neighbours
        self.temperature = temperature
        if embed is None:  # no embeddings, no neighbour vote: its share is shared out in proportion
            total = regression_weight + svm_weight
            if total >= 1.0 or total <= 0.0:
                regression_weight = max(1.0 - svm_weight, 0.0)
            else:
                regression_weight, svm_weight = regression_weight / total, svm_weight / total
        self.regression_weight = regression_weight
        self.svm_weight = svm_weight
        self.regularisation = regularisation
        self.svm_regularisation = svm_regularisation
        self.svm_temperature = svm_temperature
        self.normalise = normalise
        self.normalised_chars = normalised_chars
        self.template = template
        self.embedding_scale = embedding_scale
        self.char_ngrams = tuple(char_ngrams)
        self.class_weight = class_weight
        # the encoder is tuned only with embeddings and the base model's directory to copy it from
        self.encoder_dir = encoder_dir if embed is not None else None
        self.tuning = dict(tuning) if tuning is not None and self.encoder_dir is not None else None
        self.head_weight = head_weight if self.tuning is not None else 0.0
        self.descriptions = descriptions
        self.encoder = None  # the TunedEncoder once fitted
        self.normaliser = None
        self.weak_examples = 0
        self.classes: list[str] = []

    # ---- storage: the fitted state is stored without the embedding function (a process-local model);
    # the loader attaches it again (`attach`), so a stored classifier never names a code path to call
    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state["uses_embeddings"] = self.embed is not None
        state["embed"] = None
        state["encoder_dir"] = None  # a path of this machine: `attach` gives it again
        return state

    def __setstate__(self, state: dict) -> None:
        self.uses_embeddings = state.pop("uses_embeddings", False)
        # versions stored before these options existed load with them off
        self.__dict__.update(
            {"normalise": False, "normalised_chars": False, "template": "{}", "class_weight": None}
        )
        self.__dict__.update(
            {"normaliser": None, "weak_examples": 0, "embedding_scale": 1.0, "char_ngrams": (2, 5)}
        )
        self.__dict__.update({"encoder_dir": None, "tuning": None, "head_weight": 0.0, "encoder": None})
        self.__dict__.update({"descriptions": False})
        self.__dict__.update(state)

    def attach(self, embed: Embed | None, encoder_dir: str | Path | None = None) -> FailureModeClassifier:
        """Give a loaded classifier its embedding function back (required when it was fitted with one)
        and, when it tuned its own copy of the embedding model, that model's base directory (the tuned
        layers travel with the classifier; `encoder_tuning.EncoderMismatch` if the base differs)."""
        if getattr(self, "uses_embeddings", False) and embed is None:
            raise ValueError("this classifier was fitted with embeddings: attach the embedding function")
        self.embed = embed if getattr(self, "uses_embeddings", False) else None
        if self.encoder is not None:
            if encoder_dir is None:
                raise ValueError(
                    "this classifier tuned its own copy of the embedding model: attach the base model's "
                    "directory too"
                )
            self.encoder_dir = encoder_dir
            self.encoder.attach(encoder_dir)
        return self

    def _words_of(self, texts: list[str]) -> list[str]:
        """The text the embeddings and word n-grams see: normalised when fitted so, else lower case."""
        if self.normalise and self.normaliser is not None:
            return [self.normaliser(t) for t in texts]
        return [t.lower() for t in texts]

    def _vectors(self, words: list[str]) -> np.ndarray:
        if self.embed is None:
            return np.zeros((len(words), 0))
        prompts = [self.template.format(w) for w in words]
        if self.encoder is not None:
            return np.asarray(self.encoder.embed(prompts), dtype=float).reshape(len(words), -1)
        return np.asarray(self.embed(prompts), dtype=float).reshape(len(words), -1)

    def _char_texts(self, texts: list[str], words: list[str]) -> list[str]:
        if self.normalised_chars and self.normaliser is not None:  # both spellings' n-grams
            return [f"{t} {self.normaliser(t)}" for t in texts]
        return texts

    def _features(self, texts: list[str], words: list[str], vectors: np.ndarray):
        from scipy import sparse

        chars = self._chars.transform(self._char_texts(texts, words))
        base = sparse.hstack([sparse.csr_matrix(vectors * self.embedding_scale), chars]).tocsr()
        if self._words is None:
            return base, None
        return base, sparse.hstack([base, self._words.transform(words)]).tocsr()

    def fit(
        self,
        texts: Sequence[str],
        labels: Sequence[str],
        *,
        weak_texts: Sequence[str] = (),
        weak_labels: Sequence[str] = (),
        weak_weight: float = 0.0,
    ) -> FailureModeClassifier:
        """Fit on `texts`/`labels`; weakly labelled examples join at `weak_weight` (those whose label
        is not among `labels` are left out)."""
        from sklearn.feature_extraction.text import TfidfVectorizer
        from sklearn.linear_model import LogisticRegression

        if len(texts) != len(labels) or not texts:
            raise ValueError("fit needs as many labels as texts, at least one")
        if len(weak_texts) != len(weak_labels):
            raise ValueError("fit needs as many weak labels as weak texts")
        self.classes = sorted(set(labels))
        weak = [(str(t), label) for t, label in zip(weak_texts, weak_labels, strict=True)]
        weak = [(t, label) for t, label in weak if label in self.classes] if weak_weight > 0 else []
        self.weak_examples = len(weak)
        anchors, anchor_labels = anchor_examples(self.classes, self.descriptions)
        texts = [str(t) for t in texts] + anchors  # the mode names (and descriptions) are examples too
        labels = list(labels) + anchor_labels
        weights = np.array([1.0] * len(texts) + [weak_weight] * len(weak))
        texts += [t for t, _ in weak]
        labels += [label for _, label in weak]
        if self.normalise or self.normalised_chars:
            from manufacturing.analysis.field_text import Normaliser, domain_vocabulary

            self.normaliser = Normaliser(domain_vocabulary(texts))
        words = self._words_of(texts)
        self._labels = np.array([self.classes.index(label) for label in labels])
        self._weights = weights
        self.encoder = None
        if self.tuning is not None:  # tuned on the examples and mode names, not on weak examples
            from manufacturing.analysis.encoder_tuning import TunedEncoder

            primary = len(texts) - len(weak)
            prompts = [self.template.format(w) for w in words[:primary]]
            self.encoder = TunedEncoder(**self.tuning).fit(self.encoder_dir, prompts, labels[:primary])
        self._embeddings = self._vectors(words)
        self._chars = TfidfVectorizer(
            analyzer="char_wb", ngram_range=self.char_ngrams, sublinear_tf=True, lowercase=True
        ).fit(self._char_texts(texts, words))
        self._words = None
        if self.svm_weight > 0:
            self._words = TfidfVectorizer(
                analyzer="word", ngram_range=(1, 2), sublinear_tf=True, lowercase=True
            ).fit(words)
        features, svm_features = self._features(texts, words, self._embeddings)
        self._regression = (
            LogisticRegression(C=self.regularisation, max_iter=3000, class_weight=self.class_weight).fit(
                features, self._labels, sample_weight=weights
            )
            if self.regression_weight > 0
            else None
        )
        self._svm = None
        if self.svm_weight > 0:
            from sklearn.svm import LinearSVC

            self._svm = LinearSVC(C=self.svm_regularisation, class_weight=self.class_weight).fit(
                svm_features, self._labels, sample_weight=weights
            )
        return self

    def predict_proba(self, texts: Sequence[str]) -> np.ndarray:
        if not self.classes:
            raise ValueError("the classifier is not fitted")
        texts = [str(t) for t in texts]
        words = self._words_of(texts)
        vectors = self._vectors(words)
        features, svm_features = self._features(texts, words, vectors)
        probabilities = np.zeros((len(texts), len(self.classes)))
        if self._regression is not None:
            probabilities[:, self._regression.classes_] = self._regression.predict_proba(features)
        svm = np.zeros_like(probabilities)
        if self._svm is not None:
            margins = self._svm.decision_function(svm_features).reshape(len(texts), -1)
            if margins.shape[1] == 1:  # two classes: one margin for the second
                margins = np.hstack([-margins, margins])
            scaled = np.exp((margins - margins.max(axis=1, keepdims=True)) / self.svm_temperature)
            svm[:, self._svm.classes_] = scaled / scaled.sum(axis=1, keepdims=True)
        neighbour_weight = 1.0 - self.regression_weight - self.svm_weight
        head = getattr(self, "head_weight", 0.0) if self.encoder is not None else 0.0
        if head > 0:  # the tuned encoder's cosine head (its classes are the fit's, in the same order)
            blend = self._blend(vectors, probabilities, svm, neighbour_weight)
            return (1 - head) * blend + head * self.encoder.predict_proba(vectors)
        return self._blend(vectors, probabilities, svm, neighbour_weight)

    def _blend(self, vectors, probabilities, svm, neighbour_weight: float) -> np.ndarray:
        if self.embed is None or neighbour_weight <= 1e-9:
            return self.regression_weight * probabilities + self.svm_weight * svm
        similarity = vectors @ self._embeddings.T
        sample_weights = getattr(self, "_weights", np.ones(len(self._labels)))
        votes = np.zeros_like(probabilities)
        for row, scores in enumerate(similarity):
            nearest = np.argsort(-scores)[: self.neighbours]
            weights = np.exp((scores[nearest] - scores[nearest].max()) / self.temperature)
            np.add.at(votes[row], self._labels[nearest], weights * sample_weights[nearest])
        votes /= votes.sum(axis=1, keepdims=True)
        return neighbour_weight * votes + self.regression_weight * probabilities + self.svm_weight * svm

    def method(self) -> str:
        uses = self.embed is not None or getattr(self, "uses_embeddings", False)
        parts = []
        neighbours = 1.0 - self.regression_weight - self.svm_weight
        embedded = "all-MiniLM-L6-v2 embeddings"
        if self.normalise:
            embedded += " of normalised text"
        chars = (
            "char n-grams of the text and its normalised form" if self.normalised_chars else "char n-grams"
        )
        if self.template != "{}":
            embedded += f" in the template {self.template!r}"
        if self.encoder is not None:
            embedded = embedded.replace(
                "all-MiniLM-L6-v2", "all-MiniLM-L6-v2 (fine-tuned on the training text)"
            )
            epochs = self.encoder.epochs
            embedded += f" ({epochs} epochs, top {self.encoder.layers} layers)"
        if uses and neighbours > 1e-9:
            parts.append(f"{neighbours:g} x {self.neighbours}-nearest-neighbour vote over {embedded}")
        features = f"{embedded} and {chars}" if uses else chars
        parts.append(f"{self.regression_weight:g} x LR on {features}")
        if self.svm_weight > 0:
            parts.append(
                f"{self.svm_weight:g} x linear SVM on {features} and word 1-2-grams (softmax of margins)"
            )
        text = " + ".join(parts)
        head = getattr(self, "head_weight", 0.0) if self.encoder is not None else 0.0
        if head > 0:
            text = f"{1 - head:g} x ({text}) + {head:g} x the tuned encoder's cosine head"
        if getattr(self, "descriptions", False):
            text += "; the mode names and their ISO 14224 descriptions are examples too"
        if self.class_weight:
            text += f", class weights {self.class_weight}"
        if self.weak_examples:
            text += f", {self.weak_examples} weakly labelled excavator work orders"
        return text

    def suggest(self, text: str, k: int = 3) -> list[tuple[str, float]]:
        """The k most likely failure modes of `text`, most likely first, with their probabilities."""
        probabilities = self.predict_proba([text])[0]
        order = np.argsort(-probabilities)[:k]
        return [(self.classes[i], round(float(probabilities[i]), 4)) for i in order]


def _scores(names: np.ndarray, probabilities: np.ndarray, truth: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    ranked = names[np.argsort(-probabilities, axis=1)[:, :3]]
    return ranked[:, 0], np.array([t in r for t, r in zip(truth, ranked, strict=True)])


def evaluate(classifier: FailureModeClassifier, texts: Sequence[str], labels: Sequence[str]) -> dict:
    from sklearn.metrics import f1_score

    truth = np.array(labels, dtype=object)
    top1, in3 = _scores(np.array(classifier.classes, dtype=object), classifier.predict_proba(texts), truth)
    return {
        "examples": len(labels),
        "top1": round(float(np.mean(top1 == truth)), 4),
        "top3": round(float(np.mean(in3)), 4),
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
    weak: tuple[Sequence[str], Sequence[str], float] | None = None,
) -> dict:
    """Top-1 / top-3 / macro-F1 of `make()` classifiers over `folds` stratified, shuffled folds of one
    labelled file (the way the defaults were chosen: never on the file that is reported). `weak`
    (texts, labels, weight) joins every training fold, never a held-out one."""
    import warnings

    from sklearn.metrics import f1_score
    from sklearn.model_selection import StratifiedKFold

    texts, labels = np.asarray(texts, dtype=object), np.asarray(labels, dtype=object)
    extra = {}
    if weak is not None:
        extra = {"weak_texts": weak[0], "weak_labels": weak[1], "weak_weight": weak[2]}
    predicted = np.empty(len(labels), dtype=object)
    in3 = np.zeros(len(labels), dtype=bool)
    with warnings.catch_warnings():  # modes with fewer examples than folds are expected here
        warnings.filterwarnings("ignore", message="The least populated class", category=UserWarning)
        splits = list(StratifiedKFold(folds, shuffle=True, random_state=seed).split(texts, labels))
    for train, held in splits:
        classifier = make().fit(list(texts[train]), list(labels[train]), **extra)
        names = np.array(classifier.classes, dtype=object)
        predicted[held], in3[held] = _scores(names, classifier.predict_proba(list(texts[held])), labels[held])
    return {
        "folds": folds,
        "seed": seed,
        "examples": int(len(labels)),
        "top1": round(float(np.mean(predicted == labels)), 4),
        "top3": round(float(np.mean(in3)), 4),
        "macro_f1": round(float(f1_score(labels, predicted, average="macro", zero_division=0)), 4),
    }
