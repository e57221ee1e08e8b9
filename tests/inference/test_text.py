import pytest

from inference.engine.text import TextAssembler


@pytest.fixture(scope="module")
def tokenizer(engine):
    return engine.loaded().tokenizer


def _feed(tokenizer, assembler, text):
    return [assembler.add(token) for token in tokenizer(text, add_special_tokens=False)["input_ids"]]


def test_stop_sequence_split_over_tokens_is_never_emitted(tokenizer):
    assembler = TextAssembler(tokenizer, ["END"])
    deltas = _feed(tokenizer, assembler, "The priority is 2. EN")
    assert "".join(deltas) == "The priority is 2. "  # "EN" is held back: it may start "END"
    deltas += _feed(tokenizer, assembler, "D of record")
    assert assembler.stopped and assembler.text == "The priority is 2. "
    assert "".join(deltas) + assembler.finish() == "The priority is 2. "


def test_held_back_prefix_is_released_when_generation_ends(tokenizer):
    assembler = TextAssembler(tokenizer, ["END"])
    deltas = _feed(tokenizer, assembler, "Site is Building 7 EN")
    assert not assembler.stopped
    assert "".join(deltas) + assembler.finish() == "Site is Building 7 EN"


def test_characters_split_over_byte_tokens_are_emitted_whole(tokenizer):
    text = "Temperature 37 °C ✓ naïve"
    ids = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) > len(text.split())  # the rare characters take several byte tokens
    assembler = TextAssembler(tokenizer, [])
    deltas = [assembler.add(token) for token in ids]
    assert all("\ufffd" not in delta for delta in deltas)
    assert "".join(deltas) + assembler.finish() == text
