"""Shared pieces of the fuzz tests (tests/proof/test_fuzz_*.py): hypothesis settings and byte mutations.

CI runs a fixed, bounded set of examples (derandomized: the same inputs every run, so a failure
reproduces). To search further on a workstation, scale the example counts and draw fresh inputs:

    SUITE_FUZZ_SCALE=20 SUITE_FUZZ_RANDOM=1 .venv/bin/python -m pytest tests/proof

(tests/proof/test_api_schema.py scales its schemathesis example counts the same way.)
"""

from __future__ import annotations

import os
import struct
from pathlib import Path

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

SCALE = max(1, int(os.environ.get("SUITE_FUZZ_SCALE", "1")))
RANDOM = os.environ.get("SUITE_FUZZ_RANDOM", "") not in ("", "0")


def fuzz_settings(examples: int) -> settings:
    """`examples` generated inputs (times SUITE_FUZZ_SCALE); no deadline (the machine is shared);
    nothing written into the checkout (database=None)."""
    return settings(
        max_examples=examples * SCALE,
        deadline=None,
        derandomize=not RANDOM,
        database=None,
        # The database and tmp_path fixtures are shared by the examples on purpose: each example
        # measures its own before/after, and the accumulated state (duplicates, known patients)
        # is part of what is exercised.
        suppress_health_check=[
            HealthCheck.function_scoped_fixture,
            HealthCheck.too_slow,
            HealthCheck.data_too_large,
            HealthCheck.large_base_example,
        ],
    )


# Values that break length fields and counters: zero, one, odd, the undefined length, the largest.
INTERESTING_U32 = [0, 1, 3, 0x7F, 0xFF, 0x100, 0xFFFF, 0x10000, 0x7FFFFFFF, 0xFFFFFFFE, 0xFFFFFFFF]


@st.composite
def mutated(draw, seed: bytes, *, hot_region: int = 1024, max_mutations: int = 4) -> bytes:
    """`seed` with 1..max_mutations mutations: bit flips, overwritten bytes, interesting 16/32-bit
    values (length fields), insertions, deletions and truncation. Most positions fall in the first
    `hot_region` bytes, where headers and element lengths live; the rest anywhere."""
    data = bytearray(seed)
    for _ in range(draw(st.integers(1, max_mutations))):
        if not data:
            data += draw(st.binary(min_size=1, max_size=16))
            continue
        end = len(data) if draw(st.integers(0, 4)) == 0 else min(len(data), hot_region)
        pos = draw(st.integers(0, end - 1))
        op = draw(st.sampled_from(["flip", "bytes", "u16", "u32", "insert", "delete", "truncate"]))
        if op == "flip":
            data[pos] ^= 1 << draw(st.integers(0, 7))
        elif op == "bytes":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[pos : pos + len(chunk)] = chunk
        elif op == "u16":
            value = draw(st.sampled_from([0, 1, 0x7FFF, 0xFFFF]) | st.integers(0, 0xFFFF))
            data[pos : pos + 2] = struct.pack(draw(st.sampled_from(["<H", ">H"])), value)
        elif op == "u32":
            value = draw(st.sampled_from(INTERESTING_U32) | st.integers(0, 0xFFFFFFFF))
            data[pos : pos + 4] = struct.pack(draw(st.sampled_from(["<I", ">I"])), value)
        elif op == "insert":
            data[pos:pos] = draw(st.binary(min_size=1, max_size=32))
        elif op == "delete":
            del data[pos : pos + draw(st.integers(1, 64))]
        else:
            del data[pos:]
    return bytes(data)


def files_under(*roots: Path) -> set[Path]:
    """Every file under `roots` (missing roots are empty)."""
    return {path for root in roots if root.exists() for path in root.rglob("*") if path.is_file()}
