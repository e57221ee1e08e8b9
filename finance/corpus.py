"""AML typology descriptions for the demo models' corpus.

The typologies are the ones IBM AMLSim generates (its sample data ships 200 cycle and 200 fan-in
patterns); the descriptions follow the FATF/FinCEN wording compliance officers use.
"""

from __future__ import annotations

from collections.abc import Iterator

TYPOLOGIES = {
    "fan-in": (
        "Many accounts send funds to one account within a short period; the collector then moves the money on. "
        "Typical of placement through money mules and of structuring below reporting thresholds."
    ),
    "fan-out": (
        "One account sends funds to many accounts within a short period, often just below reporting thresholds, "
        "to disperse proceeds before layering."
    ),
    "cycle": (
        "Funds travel through a chain of accounts and return to the originator, creating the appearance of "
        "legitimate turnover (round-tripping) while obscuring the source."
    ),
    "scatter-gather": (
        "Funds are scattered from one account to intermediaries and gathered again into another account, a "
        "layering pattern that breaks the audit trail between source and destination."
    ),
    "gather-scatter": (
        "Funds from many sources are gathered into one account and immediately scattered to many destinations."
    ),
    "bipartite": "Two groups of accounts transact densely with each other and rarely with anyone else.",
    "stack": "Layered bipartite transfers: money passes through several tiers of intermediary accounts.",
    "random": "Funds move along a random walk of accounts, each hop shortly after the previous one.",
    "structuring": (
        "Cash deposits or transfers are split into amounts just below the reporting threshold to avoid "
        "currency transaction reports."
    ),
}

RED_FLAGS = [
    "A customer's transactions are inconsistent with the stated business or income.",
    "Rapid movement of funds in and out of an account with little balance retained.",
    "Transfers to or from jurisdictions on high-risk or sanctions lists.",
    "A name that matches, or nearly matches, an entry on a sanctions list requires review before payment.",
    "A suspicious activity report describes who, what, when, where, why and how, with the amounts involved.",
]


def documents() -> Iterator[str]:
    for name, text in TYPOLOGIES.items():
        yield f"AML typology {name}: {text}"
    yield from RED_FLAGS


def conversations() -> Iterator[list[dict]]:
    for name, text in TYPOLOGIES.items():
        yield [
            {"role": "system", "content": "You assist compliance officers."},
            {"role": "user", "content": f"What is the {name} money laundering typology?"},
            {"role": "assistant", "content": text},
        ]
