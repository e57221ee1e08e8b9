"""Semantic evidence for QA retrieval: the question against each attribute's name and clinician wording.

Built on `inference.services.embed` (all-MiniLM-L6-v2, offline, CPU). The attribute side (dictionary
names and the wording of dicom/data/grounding.yaml) is embedded once and cached: shipped precomputed
in dicom/data/attribute_embeddings.npz (`python manage.py build_qa_embeddings` rebuilds it after the
wording changes), and any text missing from it is embedded on first use and kept for the process.
Each question then costs one embedding and a few hundred dot products, and only when lexical
evidence is not decisive (medical.dicom.grounding.retrieve).

If the embedding model is missing or fails, retrieval carries on with lexical evidence only (logged
once): a clinician still gets the grounded, verified answer the keyword lists find.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

from medical import conf
from medical.dicom.grounding import attribute_texts, grounding_keywords

logger = logging.getLogger(__name__)

SHIPPED_VECTORS = Path(__file__).parent / "dicom" / "data" / "attribute_embeddings.npz"
_lock = threading.Lock()
_vectors: dict[str, object] = {}  # lower-cased text -> numpy unit vector (float32)
_matrices: dict[str, object] = {}  # keyword -> stacked vectors of its texts
_loaded_shipped = False
_unavailable = False


def similarities(question: str, keywords: Iterable[str]) -> dict[str, float]:
    """keyword -> the best cosine similarity between the question and one of the keyword's texts."""
    global _unavailable
    if _unavailable:
        return {}
    import numpy as np

    texts_of = {keyword: attribute_texts(keyword) for keyword in keywords}
    try:
        _embed_missing({text for texts in texts_of.values() for text in texts})
        asked = _question_vector(question.lower())
    except Exception as exc:  # a missing model must not cost the clinician the answer
        with _lock:
            if not _unavailable:
                logger.warning("medical QA retrieval without embeddings: %s", exc)
            _unavailable = True
        return {}
    scores = {}
    for keyword, texts in texts_of.items():
        matrix = _matrices.get(keyword)
        if matrix is None:
            matrix = _matrices.setdefault(keyword, np.stack([_vectors[text.lower()] for text in texts]))
        scores[keyword] = float((matrix @ asked).max())
    return scores


@lru_cache(maxsize=2048)
def _question_vector(question: str):
    """One question's embedding; clinicians ask the same questions again (and the vector is 1.5 KiB)."""
    import numpy as np

    return np.asarray(_embed([question])[0], dtype=np.float32)


def scorer():
    """The scorer `medical.dicom.retrieve` takes, or None where the site switched embeddings off."""
    return similarities if conf.qa_uses_embeddings() else None


def warm_up(keywords: Iterable[str]) -> None:
    """Embed the attribute side ahead of the first question (the demo step and benchmarks call it)."""
    similarities("warm up", keywords)


def build_shipped_vectors(keywords: Iterable[str], path: Path = SHIPPED_VECTORS) -> int:
    """Embed every text of `keywords` (plus the grounding vocabulary's) and write them to `path`."""
    import numpy as np

    wanted = set(keywords) | grounding_keywords()
    texts = sorted({text.lower() for keyword in wanted for text in attribute_texts(keyword)})
    vectors = np.asarray(_embed(texts), dtype=np.float16)
    with open(path, "wb") as handle:
        np.savez_compressed(handle, texts=np.asarray(texts), vectors=vectors)
    return len(texts)


def corpus_keywords() -> set[str]:
    """The keywords of every data set shipped with pydicom (the attributes real files tend to carry)."""
    import warnings

    import pydicom

    from medical.corpus import TEST_FILES

    keywords: set[str] = set()
    for path in sorted(TEST_FILES.rglob("*")):
        if not path.is_file() or path.suffix in (".json", ".txt", ".dump", ".gz", ".icc"):
            continue
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                dataset = pydicom.dcmread(path, stop_before_pixels=True, force=True)
                keywords |= {elem.keyword for elem in dataset.iterall() if elem.keyword}
        except Exception as exc:  # unreadable test files (deliberately broken ones) add nothing
            logger.debug("skipped %s: %s", path.name, exc)
    return keywords


def _load_shipped() -> None:
    global _loaded_shipped
    if _loaded_shipped:
        return
    import numpy as np

    with _lock:
        if not _loaded_shipped and SHIPPED_VECTORS.is_file():
            with np.load(SHIPPED_VECTORS) as shipped:
                for text, vector in zip(shipped["texts"], shipped["vectors"], strict=True):
                    _vectors.setdefault(str(text), vector.astype(np.float32))
        _loaded_shipped = True


def _embed_missing(texts: set[str]) -> None:
    import numpy as np

    _load_shipped()
    missing = sorted({text.lower() for text in texts} - _vectors.keys())
    if not missing:
        return
    vectors = _embed(missing)
    with _lock:
        for text, vector in zip(missing, vectors, strict=True):
            _vectors[text] = np.asarray(vector, dtype=np.float32)


def _embed(texts: list[str]) -> list[list[float]]:
    from inference.services import embed

    return embed(texts)
