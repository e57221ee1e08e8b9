"""A small synthetic corpus shaped like the suite's real grounding data.

Used by the engine's tests and benchmark when no application data is at hand: records of
`key = value` attributes (imaging headers, maintenance work orders, payment transfers) followed
by a question whose answer copies a value from the record. Values are drawn at random from a
seeded generator, so the model has to read the context rather than memorise answers.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

SYSTEM_PROMPT = "Answer from the record above. Copy values exactly; say so when a value is missing."


@dataclass(frozen=True)
class Field:
    label: str  # how the field is written in the record
    phrase: str  # how a sentence names it
    unit: str
    draw: Callable[[random.Random], str]


def _choice(*options: str) -> Callable[[random.Random], str]:
    return lambda rng: rng.choice(options)


def _integer(low: int, high: int) -> Callable[[random.Random], str]:
    return lambda rng: str(rng.randint(low, high))


def _decimal(low: float, high: float, digits: int = 1) -> Callable[[random.Random], str]:
    return lambda rng: f"{rng.uniform(low, high):.{digits}f}"


def _date(rng: random.Random) -> str:
    return f"20{rng.randint(10, 26):02d}{rng.randint(1, 12):02d}{rng.randint(1, 28):02d}"


def _account(rng: random.Random) -> str:
    return f"ACC-{rng.randint(10000, 99999)}"


IMAGING_FIELDS = (
    Field("(0008,0060) Modality", "modality", "", _choice("CT", "MR", "CR", "US", "NM", "PT")),
    Field(
        "(0018,0050) SliceThickness",
        "slice thickness",
        "mm",
        _choice("0.625", "1.0", "1.25", "2.5", "3.0", "5.0"),
    ),
    Field("(0028,0010) Rows", "number of rows", "", _choice("256", "320", "512", "1024", "2048")),
    Field("(0028,0011) Columns", "number of columns", "", _choice("256", "320", "512", "1024", "2048")),
    Field(
        "(0018,0015) BodyPartExamined",
        "body part examined",
        "",
        _choice("CHEST", "HEAD", "ABDOMEN", "KNEE", "PELVIS"),
    ),
    Field("(0018,0060) KVP", "peak kilovoltage", "kV", _choice("80", "100", "120", "140")),
    Field("(0018,0080) RepetitionTime", "repetition time", "ms", _decimal(300, 5000)),
    Field("(0018,0081) EchoTime", "echo time", "ms", _decimal(2, 120)),
    Field("(0018,0087) MagneticFieldStrength", "magnetic field strength", "T", _choice("0.5", "1.5", "3.0")),
    Field(
        "(0008,0070) Manufacturer",
        "manufacturer",
        "",
        _choice("GE MEDICAL SYSTEMS", "SIEMENS", "Philips", "TOSHIBA"),
    ),
    Field("(0020,0013) InstanceNumber", "instance number", "", _integer(1, 400)),
    Field("(0008,0020) StudyDate", "study date", "", _date),
    Field("(0028,0100) BitsAllocated", "bits allocated", "", _choice("8", "12", "16")),
    Field("(0018,1151) XRayTubeCurrent", "X-ray tube current", "mA", _integer(50, 600)),
)

WORK_ORDER_FIELDS = (
    Field("equipment", "equipment", "", lambda rng: f"Chiller {rng.randint(1, 14)}"),
    Field(
        "failure_code",
        "failure code",
        "",
        _choice("M005 Leakage", "M013 Vibration", "M020 Overheating", "M031 Noise"),
    ),
    Field("priority", "priority", "", _choice("1", "2", "3", "4")),
    Field("duration_hours", "repair duration", "hours", _decimal(0.5, 12)),
    Field("preventive", "preventive flag", "", _choice("yes", "no")),
    Field("site", "site", "", _choice("North Plant", "Harbour Campus", "Building 7", "Data Hall B")),
    Field("reported", "report date", "", _date),
)

TRANSFER_FIELDS = (
    Field("sender", "sender", "", _account),
    Field("receiver", "receiver", "", _account),
    Field("amount", "amount", "EUR", lambda rng: f"{rng.randint(100, 99999)}.{rng.randint(0, 99):02d}"),
    Field("channel", "channel", "", _choice("SEPA", "SWIFT", "card", "cash deposit")),
    Field("country", "counterparty country", "", _choice("DE", "NL", "CY", "AE", "PA", "GB")),
    Field("step", "time step", "", _integer(1, 200)),
)

DOMAINS = (
    ("Attributes", IMAGING_FIELDS),
    ("Work order", WORK_ORDER_FIELDS),
    ("Transfer", TRANSFER_FIELDS),
)


def _record(rng: random.Random, fields: tuple[Field, ...], size: int) -> list[tuple[Field, str]]:
    chosen = rng.sample(fields, k=min(size, len(fields)))
    return [(f, f.draw(rng)) for f in chosen]


def _answer(field: Field, value: str) -> str:
    unit = f" {field.unit}" if field.unit else ""
    return f"The {field.phrase} is {value}{unit}."


def record_question(rng: random.Random, *, summary: bool = False) -> tuple[list[dict[str, str]], str]:
    """One chat example: (messages without the answer, the answer). `summary` forces a summary."""
    heading, fields = rng.choice(DOMAINS)
    record = _record(rng, fields, rng.randint(3, min(7, len(fields))))
    present = {f for f, _ in record}
    absent = [f for f in fields if f not in present]
    roll = rng.random()
    if summary or roll < 0.3:
        # Summaries are the long, copy-heavy answers (report and case-note drafting).
        messages = _messages(heading, record, "Summarize the record.")
        return messages, " ".join(_answer(f, value) for f, value in record)
    if absent and roll < 0.45:
        # A question about a field the record lacks teaches the model not to invent values.
        asked = rng.choice(absent)
        answer = f"The record does not contain the {asked.phrase}."
    else:
        asked, value = rng.choice(record)
        answer = _answer(asked, value)
    return _messages(heading, record, f"What is the {asked.phrase}?"), answer


def _messages(heading: str, record: list[tuple[Field, str]], question: str) -> list[dict[str, str]]:
    lines = "\n".join(f"{f.label} = {value}" for f, value in record)
    return [
        {"role": "system", "content": SYSTEM_PROMPT},
        {"role": "user", "content": f"{heading}:\n{lines}\nQuestion: {question}"},
    ]


def chat_examples(count: int, *, seed: int = 0) -> list[list[dict[str, str]]]:
    rng = random.Random(seed)
    examples = []
    for _ in range(count):
        messages, answer = record_question(rng)
        examples.append([*messages, {"role": "assistant", "content": answer}])
    return examples


def chat_prompts(count: int, *, seed: int = 1, summaries: bool = False) -> list[list[dict[str, str]]]:
    """Prompts (without answers) for evaluation and benchmarks; use a seed unlike the training one.

    `summaries` asks only for summaries: long, copy-heavy answers that suit decode benchmarks.
    """
    rng = random.Random(seed)
    return [record_question(rng, summary=summaries)[0] for _ in range(count)]


def texts(count: int, *, seed: int = 0) -> list[str]:
    """Short prose descriptions of records, the kind of text found in reports and case notes."""
    rng = random.Random(seed)
    documents = []
    for _ in range(count):
        heading, fields = rng.choice(DOMAINS)
        record = _record(rng, fields, rng.randint(3, 5))
        sentences = [_answer(f, value) for f, value in record]
        documents.append(f"{heading} summary. " + " ".join(sentences))
    return documents


def conversation(turns: int, *, seed: int = 2) -> list[str]:
    """User messages of one multi-turn conversation: a record first, then questions about it."""
    rng = random.Random(seed)
    heading, fields = rng.choice(DOMAINS)
    record = _record(rng, fields, min(7, len(fields)))
    first = _messages(heading, record, f"What is the {record[0][0].phrase}?")[1]["content"]
    follow_ups = [f"Question: What is the {rng.choice(record)[0].phrase}?" for _ in range(turns - 1)]
    return [first, *follow_ups]
