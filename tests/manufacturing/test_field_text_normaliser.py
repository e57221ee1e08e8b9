"""Normalising technician shorthand before it is embedded (SymSpell's English list, the domain's words)."""

from __future__ import annotations

from manufacturing.analysis.field_text import Normaliser, domain_vocabulary


def test_shorthand_spelling_and_joined_words():
    normalise = Normaliser(domain_vocabulary(["tripped out", "seized shut", "worn out", "belt slipping"]))
    assert normalise("U/S") == "unserviceable"
    assert normalise("wont start") == "will not start"
    assert normalise("siezed") == "seized"
    assert normalise("triped") == "tripped"  # the domain's word before an equally close commoner one
    assert normalise("wornbelt") == "worn belt"
    # short words, numbers and words nothing is found for stay as written
    assert normalise("dpr 1 qzxv") == "dpr 1 qzxv"


def test_domain_words_decide_ties_and_state_is_small():
    import pickle

    plain = Normaliser()
    domain = Normaliser(domain_vocabulary(["snapped off", "snapped"]))
    assert domain("snaped") == "snapped"
    assert plain("snaped") != "" and domain.domain["snapped"] == 2
    restored = pickle.loads(pickle.dumps(domain))  # noqa: S301 - bytes made here
    assert restored.domain == domain.domain and restored("snaped") == "snapped"
    assert len(pickle.dumps(domain)) < 1000  # the speller itself is never stored
