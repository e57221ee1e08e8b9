"""Sanctions / PEP name screening: a pure-Python index over list entries (no Django).

    entries = load_list_csv("un_list.csv")            # ListFormatError(row_errors=...) on bad rows
    index = NameIndex.build(entries, version="un-2026-12")
    index.match("Salek, Abdulhai", threshold=0.82)    # -> [NameMatch(entry_id, entry_name, score, reason)]

How a name is compared (each step exists for one robustness case):

1. ``normalize``: case folded; accents dropped (NFKD) and a small transliteration table for letters
   NFKD keeps (ß, ø, ł, ı, Cyrillic...); apostrophes and their mis-encodings ('?') removed;
   hyphens and dots split tokens; "SURNAME, Given" reordered to "Given SURNAME" (suffixes such as
   "JR" after a comma stay put).
2. Blocking: character 2-3-gram TF-IDF (within token boundaries) over the list; a query is compared
   in detail with its ``candidates`` nearest entries only (sparse dot product, batched in
   ``match_many``).
3. Token alignment: every query token against every entry token, similarity = the best of
   Jaro-Winkler on the tokens and on their phonetic skeletons (doubled letters collapsed, common
   transliteration pairs folded: ou/u, ph/f, kh/h, y/i, e/a, o/u...); one-to-one greedy pairing;
   a one-letter token pairs with a token of the same initial (initials). Pairs below
   ``TOKEN_MIN_SIM`` do not count.
4. Weights: each token weighs its IDF in the list, so a shared common surname or particle
   (MOHAMMAD, AL, KIM) carries little and a query that shares only it stays below threshold
   (shared-surname resistance). An unpaired interior entry token (a dropped middle name) counts
   at half weight.
5. Score = F1 of the weighted coverage of the query tokens and of the entry tokens, or the
   similarity of the two names with spaces and hyphens removed when that is higher (split or
   merged tokens such as "MYONG-CHIN" / "MYONGC-HIN"), capped by the token score plus 0.15 so
   that a different given name cannot be carried by string overlap alone.

Everything a match used is in ``NameMatch.details`` (normalised tokens, weights, pairs) so that
``score_pair_from_details`` can recompute the score without the index (alert replay).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
from dataclasses import dataclass, field

import numpy as np
from rapidfuzz.distance import Indel, JaroWinkler
from rapidfuzz.process import cdist

from .normalize import normalize, skeleton

TOKEN_MIN_SIM = 0.84
INITIAL_SIM = 0.9
INITIAL_FULL_CREDIT = 0.8
MIDDLE_DROP_WEIGHT = 0.5
JOINED_CAP_MARGIN = 0.15
DEFAULT_THRESHOLD = 0.82
# blocking: the lowest char n-gram cosine of a true match in the UN typo set is 0.38
MIN_BLOCK_COSINE = 0.25


class ListFormatError(ValueError):
    """A list file rejected as a whole; ``row_errors`` is a list of (row_number, field, message)."""

    def __init__(self, row_errors):
        self.row_errors = list(row_errors)
        head = "; ".join(f"row {r} {f}: {m}" for r, f, m in self.row_errors[:5])
        more = f" (+{len(self.row_errors) - 5} more)" if len(self.row_errors) > 5 else ""
        super().__init__(f"{len(self.row_errors)} bad row(s): {head}{more}")


@dataclass(frozen=True)
class ListEntry:
    entry_id: str
    name: str
    date_of_birth: str = ""
    nationality: str = ""


@dataclass(frozen=True)
class NameMatch:
    entry_id: str
    entry_name: str
    score: float
    reason: str
    details: dict = field(default_factory=dict, compare=False, repr=False)


def token_sim_matrix(q_tokens, e_tokens, q_skel=None, e_skel=None) -> np.ndarray:
    """Token similarities (query tokens x entry tokens): 1.0 for equal tokens; INITIAL_SIM for a
    one-letter token and a token of the same initial (0 otherwise); else the best of Jaro-Winkler on
    the tokens and on their skeletons (minus 0.02), zeroed below TOKEN_MIN_SIM."""
    q_skel = q_skel or [skeleton(t) for t in q_tokens]
    e_skel = e_skel or [skeleton(t) for t in e_tokens]
    m = cdist(q_tokens, e_tokens, scorer=JaroWinkler.normalized_similarity, dtype=np.float64)
    ms = cdist(q_skel, e_skel, scorer=JaroWinkler.normalized_similarity, dtype=np.float64) - 0.02
    m = np.maximum(m, ms)
    m[m < TOKEN_MIN_SIM] = 0.0
    q_one = np.array([len(t) == 1 for t in q_tokens])
    e_one = np.array([len(t) == 1 for t in e_tokens])
    if q_one.any() or e_one.any():
        same_initial = np.array([[a[0] == b[0] for b in e_tokens] for a in q_tokens])
        one = q_one[:, None] | e_one[None, :]
        m[one] = np.where(same_initial[one], INITIAL_SIM, 0.0)
    eq = np.array([[a == b for b in e_tokens] for a in q_tokens])
    m[eq] = 1.0
    return m


def score_tokens(q_tokens, q_weights, e_tokens, e_weights, sims=None):
    """Score a query against one entry from tokens and weights alone.

    ``sims``: the ``token_sim_matrix`` of the two token lists when already computed.
    Returns (score, pairs, kind) with pairs = [(query_token, entry_token, similarity)] and
    kind "tokens" or "joined" telling which comparison gave the score.
    """
    if sims is None:
        sims = token_sim_matrix(q_tokens, e_tokens)
    qi, ej = np.nonzero(sims)
    cands = [(float(sims[i, j]), int(i), int(j)) for i, j in zip(qi, ej, strict=True)]
    cands.sort(key=lambda c: (-c[0], c[1], c[2]))
    used_q, used_e, pairs = set(), set(), []
    for s, i, j in cands:
        if i in used_q or j in used_e:
            continue
        used_q.add(i)
        used_e.add(j)
        pairs.append((i, j, s))
    q_total = sum(q_weights)
    e_total = 0.0
    last = len(e_tokens) - 1
    for j, w in enumerate(e_weights):
        interior = 0 < j < last
        e_total += w * (MIDDLE_DROP_WEIGHT if interior and j not in used_e else 1.0)
    q_cov = e_cov = 0.0
    for i, j, s in pairs:
        # an initial (already weighing half) stands for the full token it pairs with, which then
        # counts at INITIAL_FULL_CREDIT of its weight: "A. G. SURNAME" is a weaker match than the
        # full name, and a wrong initial leaves the given names unpaired
        q_one, e_one = len(q_tokens[i]) == 1, len(e_tokens[j]) == 1
        q_cov += s * q_weights[i] * (INITIAL_FULL_CREDIT if e_one and not q_one else 1.0)
        e_cov += s * e_weights[j] * (INITIAL_FULL_CREDIT if q_one and not e_one else 1.0)
    q_cov = q_cov / q_total if q_total else 0.0
    e_cov = e_cov / e_total if e_total else 0.0
    token_score = 2 * q_cov * e_cov / (q_cov + e_cov) if q_cov + e_cov else 0.0
    joined = Indel.normalized_similarity("".join(q_tokens), "".join(e_tokens))
    joined = min(joined, token_score + JOINED_CAP_MARGIN)
    kind = "tokens"
    score = token_score
    if joined > token_score:
        score, kind = joined, "joined"
    named = [(q_tokens[i], e_tokens[j], round(s, 4)) for i, j, s in pairs]
    return float(score), named, kind


def score_pair_from_details(details: dict) -> float:
    """Recompute a match score from ``NameMatch.details`` alone (used by alert replay)."""
    score, _, _ = score_tokens(
        details["query_tokens"], details["query_weights"], details["entry_tokens"], details["entry_weights"]
    )
    return round(score, 6)


def _reason(q_tokens, e_tokens, pairs, kind) -> str:
    parts = []
    exact = sum(1 for a, b, _ in pairs if a == b)
    fuzzy = [f"{a}~{b}" for a, b, s in pairs if a != b and len(a) > 1 and len(b) > 1]
    initials = [
        f"{a}.={b}" if len(a) == 1 else f"{a}={b}." for a, b, _ in pairs if (len(a) == 1) != (len(b) == 1)
    ]
    parts.append(f"{exact} exact token(s)")
    if fuzzy:
        parts.append("fuzzy " + ", ".join(fuzzy))
    if initials:
        parts.append("initials " + ", ".join(initials))
    q_order = [a for a, _, _ in pairs]
    if q_order != [t for t in q_tokens if t in q_order]:
        parts.append("token order differs")
    missing = len(e_tokens) - len(pairs)
    if missing:
        parts.append(f"{missing} entry token(s) absent")
    if kind == "joined":
        parts.append("names compared without spaces")
    return "; ".join(parts)


def load_list_csv(path_or_file, *, id_prefix: str = "") -> list[ListEntry]:
    """Read a list CSV in the format of un_list.csv (full_name or first/middle/last name columns,
    optional id, date_of_birth, nationality). Raises ListFormatError listing every bad row."""
    if hasattr(path_or_file, "read"):
        data = path_or_file.read()
        f = io.StringIO(data.decode("utf-8-sig") if isinstance(data, bytes) else data)
    else:
        f = open(path_or_file, newline="", encoding="utf-8-sig")  # noqa: SIM115
    with f:
        reader = csv.DictReader(f)
        cols = set(reader.fieldnames or [])
        if not ({"full_name"} <= cols or {"first_name", "last_name"} <= cols):
            raise ListFormatError(
                [(1, "header", "expected a full_name column (or first_name and last_name)")]
            )
        entries, errors, seen = [], [], set()
        for n, row in enumerate(reader, start=2):
            name = (row.get("full_name") or "").strip()
            if not name:
                parts = [(row.get(k) or "").strip() for k in ("first_name", "middle_name", "last_name")]
                name = " ".join(p for p in parts if p)
            if not name:
                errors.append((n, "full_name", "empty name"))
                continue
            if not normalize(name):
                errors.append((n, "full_name", f"no letters in {name!r}"))
                continue
            entry_id = (row.get("id") or "").strip() or f"{id_prefix}{n - 1}"
            if entry_id in seen:
                errors.append((n, "id", f"duplicate id {entry_id!r}"))
                continue
            seen.add(entry_id)
            entries.append(
                ListEntry(
                    entry_id,
                    name,
                    (row.get("date_of_birth") or "").strip(),
                    (row.get("nationality") or "").strip(),
                )
            )
    if errors:
        raise ListFormatError(errors)
    return entries


def list_version(entries: list[ListEntry]) -> str:
    """Content hash of a list (ids and names), used as its version when none is given."""
    h = hashlib.sha256()
    for e in entries:
        h.update(f"{e.entry_id}\x1f{e.name}\x1e".encode())
    return h.hexdigest()[:16]


class NameIndex:
    """Blocking + token-alignment matcher over list entries. Build once, match many times."""

    def __init__(self, entries, tokens, skels, weights, idf, default_idf, vectorizer, matrix, version):
        self.entries = entries
        self.tokens = tokens
        self.skels = skels
        self.weights = weights
        self.idf = idf
        self.default_idf = default_idf
        self.vectorizer = vectorizer
        self.matrix = matrix
        self.version = version

    @classmethod
    def build(cls, entries: list[ListEntry], *, version: str | None = None) -> NameIndex:
        from sklearn.feature_extraction.text import TfidfVectorizer

        entries = list(entries)
        tokens = [normalize(e.name) for e in entries]
        df: dict[str, int] = {}
        for toks in tokens:
            for t in set(toks):
                df[t] = df.get(t, 0) + 1
        n = max(len(entries), 1)
        idf = {t: math.log((n + 1) / (c + 1)) + 1.0 for t, c in df.items()}
        default_idf = math.log(n + 1) + 1.0
        weights = [[cls._weight(t, idf, default_idf) for t in toks] for toks in tokens]
        skels = [[skeleton(t) for t in toks] for toks in tokens]
        vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(2, 3), sublinear_tf=True, dtype=np.float32
        )
        matrix = vectorizer.fit_transform([" ".join(t) for t in tokens]) if entries else None
        return cls(
            entries,
            tokens,
            skels,
            weights,
            idf,
            default_idf,
            vectorizer,
            matrix,
            version or list_version(entries),
        )

    @staticmethod
    def _weight(token, idf, default_idf):
        w = idf.get(token, default_idf)
        return w * (0.5 if len(token) == 1 else 1.0)

    def __len__(self):
        return len(self.entries)

    def match(
        self, name: str, *, threshold: float = DEFAULT_THRESHOLD, candidates: int = 10
    ) -> list[NameMatch]:
        """Entries matching ``name`` with score >= threshold, best first."""
        return self.match_many([name], threshold=threshold, candidates=candidates)[0]

    def match_many(
        self, names: list[str], *, threshold: float = DEFAULT_THRESHOLD, candidates: int = 10
    ) -> list[list[NameMatch]]:
        """Batch form of ``match`` (one sparse product for the blocking step). A name that recurs
        in ``names`` (a recurring payee, a customer on many rows) is matched once: the same matches
        (the same objects, frozen) for each of its rows."""
        if not names:
            return []
        distinct = list(dict.fromkeys(names))
        if len(distinct) < len(names):
            found = dict(
                zip(
                    distinct,
                    self.match_many(distinct, threshold=threshold, candidates=candidates),
                    strict=True,
                )
            )
            return [list(found[name]) for name in names]
        q_tokens = [normalize(n) for n in names]
        if not self.entries:
            return [[] for _ in names]
        qm = self.vectorizer.transform([" ".join(t) for t in q_tokens])
        sims = (qm @ self.matrix.T).tocsr()
        out = []
        for r, toks in enumerate(q_tokens):
            if not toks:
                out.append([])
                continue
            lo, hi = sims.indptr[r], sims.indptr[r + 1]
            keep = sims.data[lo:hi] >= MIN_BLOCK_COSINE
            cols, vals = sims.indices[lo:hi][keep], sims.data[lo:hi][keep]
            if len(cols) > candidates:
                top = np.argpartition(-vals, candidates)[:candidates]
                cols = cols[top]
            out.append(self._score_candidates(toks, cols, threshold))
        return out

    def _score_candidates(self, q_tokens, cols, threshold):
        q_weights = [self._weight(t, self.idf, self.default_idf) for t in q_tokens]
        found = []
        if not len(cols):
            return found
        cols = [int(c) for c in cols]
        e_all = [t for c in cols for t in self.tokens[c]]
        s_all = [t for c in cols for t in self.skels[c]]
        sims_all = token_sim_matrix(q_tokens, e_all, [skeleton(t) for t in q_tokens], s_all)
        start = 0
        for c in cols:
            width = len(self.tokens[c])
            sims = sims_all[:, start : start + width]
            start += width
            if not sims.any():
                continue
            score, pairs, kind = score_tokens(q_tokens, q_weights, self.tokens[c], self.weights[c], sims)
            if score >= threshold:
                e = self.entries[c]
                found.append(
                    NameMatch(
                        e.entry_id,
                        e.name,
                        round(score, 6),
                        _reason(q_tokens, self.tokens[c], pairs, kind),
                        {
                            "list_version": self.version,
                            "query_tokens": q_tokens,
                            "query_weights": q_weights,
                            "entry_tokens": self.tokens[c],
                            "entry_weights": self.weights[c],
                            "pairs": pairs,
                            "kind": kind,
                            "threshold": threshold,
                        },
                    )
                )
        found.sort(key=lambda m: (-m.score, m.entry_id))
        return found
