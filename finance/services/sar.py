"""SAR drafting: facts from the case, a deterministic structured draft where every sentence cites
the alert and transaction ids it rests on, optional phrasing by the local LLM (through
inference.services) with each rephrased sentence checked (same citations, every number found in
the facts; otherwise the structured sentence stays), officer edits (re-verified), a second officer
approves. Draft, edits and approval are on the trail; exports as printable HTML and goAML-style XML.
"""

from __future__ import annotations

import hashlib
import re
from xml.etree import ElementTree as ET

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from access.enforcement import check
from audit.sealing import sealed_texts
from audit.services import record
from finance.models import SAR, Case
from finance.screening.scenarios import SCENARIOS
from finance.services.errors import FinanceRefused, FourEyesViolation
from inference.services import GenerationParams, completion_create, resolve_target

CITATION = re.compile(r"\[((?:[AT]\d+)(?:,\s*[AT]\d+)*)\]")
NUMBER = re.compile(r"(?<![A-Za-z\d])\d[\d,]*(?:\.\d+)?")
MAX_TRANSACTIONS = 25
PHRASE_MAX_TOKENS = 64


def model_name() -> str:
    return str(getattr(settings, "FINANCE_SAR_MODEL", "finance_sar") or "finance_sar")


def _money(value: float) -> str:
    return f"{value:,.2f}"


def case_facts(case: Case) -> dict:
    """Who, what, when, where, why and how of a case, from its alerts and their transactions."""
    alerts = list(case.alerts.select_related("transaction").order_by("transaction__ts", "pk"))
    if not alerts:
        raise FinanceRefused("The case has no alerts to report on.")
    txs = [a.transaction for a in alerts]
    scenarios = {}
    for alert in alerts:
        for hit in alert.evidence.get("rules", []):
            scenarios.setdefault(hit["code"], []).append(alert.pk)
    countries = sorted({c for tx in txs for c in (tx.src_country, tx.dst_country) if c})
    return {
        "case": case.pk,
        "team": case.team,
        "subject_account": case.account,
        "banks": sorted({tx.src_bank for tx in txs if tx.src_account == case.account and tx.src_bank}),
        "alerts": [
            {"id": a.pk, "risk": round(a.risk, 3), "decision": a.decision, "transaction": a.transaction_id}
            for a in alerts
        ],
        "transactions": [
            {
                "id": tx.pk,
                "ref": tx.tx_ref,
                "date": tx.ts.date().isoformat(),
                "from": tx.src_account,
                "to": tx.dst_account,
                "amount": round(tx.amount_paid, 2),
                "currency": tx.currency_paid,
                "format": tx.payment_format,
                "src_country": tx.src_country,
                "dst_country": tx.dst_country,
            }
            for tx in txs[:MAX_TRANSACTIONS]
        ],
        "total_amount": round(sum(tx.amount_paid for tx in txs), 2),
        "currencies": sorted({tx.currency_paid for tx in txs}),
        "first_date": txs[0].ts.date().isoformat(),
        "last_date": txs[-1].ts.date().isoformat(),
        "countries": countries,
        "scenarios": {code: ids for code, ids in sorted(scenarios.items())},
    }


def _cite(*ids: str) -> str:
    return "[" + ", ".join(ids) + "]"


def structured_sentences(facts: dict) -> list[str]:
    """The draft as sentences built from the facts alone; each ends with its citations."""
    all_alerts = [f"A{a['id']}" for a in facts["alerts"]]
    all_txs = [f"T{t['id']}" for t in facts["transactions"]]
    currency = facts["currencies"][0] if len(facts["currencies"]) == 1 else "mixed currencies"
    out = [
        f"Who: account {facts['subject_account']} (team {facts['team']}) is the subject of this report "
        f"{_cite(*all_alerts)}.",
        f"What: {len(facts['transactions'])} alerted transactions totalling {_money(facts['total_amount'])} "
        f"{currency} {_cite(*all_txs)}.",
        f"When: between {facts['first_date']} and {facts['last_date']} {_cite(all_txs[0], all_txs[-1])}.",
    ]
    if facts["countries"]:
        out.append(f"Where: counterparties in {', '.join(facts['countries'])} {_cite(*all_txs)}.")
    by_id = {a["id"]: a for a in facts["alerts"]}
    tx_of = {t["id"]: t for t in facts["transactions"]}
    for alert in facts["alerts"]:
        tx = tx_of.get(alert["transaction"])
        if tx is None:
            continue
        out.append(
            f"On {tx['date']} account {tx['from']} paid {_money(tx['amount'])} {tx['currency']} to account "
            f"{tx['to']} by {tx['format'] or 'transfer'}, raising alert {alert['id']} with risk "
            f"{alert['risk']} {_cite('A' + str(alert['id']), 'T' + str(tx['id']))}."
        )
    for code, alert_ids in facts["scenarios"].items():
        title = SCENARIOS[code].title if code in SCENARIOS else code
        out.append(f"Why: {title} {_cite(*[f'A{i}' for i in alert_ids if i in by_id])}.")
    out.append(
        "How: the pattern of payments above is what the listed scenarios detect; the officer's review "
        f"is recorded with the case {_cite(*all_alerts)}."
    )
    return out


def _numbers(text: str) -> set[str]:
    return {n.replace(",", "").rstrip(".") for n in NUMBER.findall(CITATION.sub("", text))}


def _fact_numbers(facts: dict) -> set[str]:
    found: set[str] = set()
    for sentence in structured_sentences(facts):
        found |= _numbers(sentence)
    for tx in facts["transactions"]:
        found |= {str(tx["amount"]), f"{tx['amount']:.2f}", str(tx["id"])}
    for key in ("first_date", "last_date"):
        found |= _numbers(facts[key])
    return {n.lstrip("0") or "0" for n in found} | found


def split_sentences(text: str) -> list[str]:
    # a sentence ends at ". " before a capital, and always after its citations ("[A1, T2]. ")
    parts = re.split(r"(?<=[.!?])\s+(?=[A-Z])|(?<=\]\.)\s+", " ".join((text or "").split()))
    return [p for p in parts if p.strip()]


def verify(text: str, facts: dict) -> dict:
    """Per sentence: its citations (must exist in the facts) and numbers (must be found in the facts)."""
    known_ids = {f"A{a['id']}" for a in facts["alerts"]} | {f"T{t['id']}" for t in facts["transactions"]}
    numbers = _fact_numbers(facts)
    sentences = []
    for sentence in split_sentences(text):
        cited = [c.strip() for group in CITATION.findall(sentence) for c in group.split(",")]
        unknown_citations = sorted(set(cited) - known_ids)
        unverified = sorted(
            n for n in _numbers(sentence) if n not in numbers and (n.lstrip("0") or "0") not in numbers
        )
        sentences.append(
            {
                "text": sentence,
                "citations": cited,
                "cited": bool(cited) and not unknown_citations,
                "unknown_citations": unknown_citations,
                "unverified_numbers": unverified,
            }
        )
    return {
        "sentences": sentences,
        "cited_share": round(sum(s["cited"] for s in sentences) / max(len(sentences), 1), 3),
        "numbers_verified": all(not s["unverified_numbers"] for s in sentences),
        "ok": bool(sentences) and all(s["cited"] and not s["unverified_numbers"] for s in sentences),
    }


def _phrase(user, sentence: str, facts_numbers: set[str]) -> tuple[str, str]:
    """(sentence, how): the model's rephrasing if it keeps the citations and every number verifies,
    else the structured sentence with the reason."""
    target = resolve_target(model_name())
    citations = CITATION.findall(sentence)
    body = CITATION.sub("", sentence).strip().rstrip(".")
    completion = completion_create(
        user=user,
        target=target,
        prompt=[
            {
                "role": "system",
                "content": "Rewrite the sentence in formal suspicious activity report style. Keep every "
                "number, date and account exactly. Answer with one sentence only.",
            },
            {"role": "user", "content": body},
        ],
        params=GenerationParams(max_tokens=PHRASE_MAX_TOKENS, temperature=0.0, stop=["\n"]),
        endpoint="finance.sar_draft",
    )
    text = " ".join(completion.result.text.split()).strip()
    if not text:
        return sentence, "empty model output: structured sentence kept"
    text = text[:1].upper() + text[1:].rstrip(".") + " " + " ".join(f"[{c}]" for c in citations) + "."
    bad = sorted(
        n for n in _numbers(text) if n not in facts_numbers and (n.lstrip("0") or "0") not in facts_numbers
    )
    if bad:
        return sentence, f"model sentence rejected: numbers not in the facts ({', '.join(bad[:5])})"
    if set(_numbers(body)) - _numbers(text):
        return sentence, "model sentence rejected: it dropped a number of the facts"
    return text, "model"


def sar_draft(*, actor, case: Case, use_model: bool = True) -> SAR:
    """Draft a SAR for `case` (the preparer). Numbers and citations are verified before it is stored."""

    check(actor, "sar", case)
    if case.status == Case.Status.CLOSED:
        raise FinanceRefused("The case is closed.")
    facts = case_facts(case)
    sentences = structured_sentences(facts)
    how, model_used = ["structured"] * len(sentences), ""
    if use_model:
        numbers = _fact_numbers(facts)
        try:
            for i, sentence in enumerate(sentences):
                phrased, how[i] = _phrase(actor, sentence, numbers)
                alone = verify(phrased, facts)
                if how[i] == "model" and not (alone["ok"] and len(alone["sentences"]) == 1):
                    phrased, how[i] = (
                        sentence,
                        "model sentence rejected: it does not verify as one cited sentence",
                    )
                sentences[i] = phrased
            model_used = model_name()
        except Exception as error:  # no model registered, denied, overloaded: the structured draft stands
            how = [f"structured ({type(error).__name__}: {str(error)[:120]})"] * len(sentences)
            sentences = structured_sentences(facts)
    text = " ".join(sentences)
    check_result = verify(text, facts)
    if not check_result["ok"]:  # cannot happen for the structured draft; never store an unverified one
        raise FinanceRefused("The draft did not verify against the facts; nothing was stored.")
    check_result["phrasing"] = how
    with transaction.atomic():
        sar = SAR.objects.create(
            case=case,
            text=text,
            facts=facts,
            verification=check_result,
            prepared_by=actor,
            editors=[actor.username],
            model_name=model_used,
        )
        record(
            actor=actor,
            action="sar.draft",
            resource_type="sar",
            resource_id=str(sar.pk),
            outcome="succeeded",
            payload={
                "case": case.pk,
                "model": model_used,
                "facts_sha256": hashlib.sha256(repr(sorted(facts.items())).encode()).hexdigest(),
                # The narrative names persons: sealed like clinicians' questions (audit.sealing).
                **sealed_texts(
                    {"text": text}, action="sar.draft", resource_type="sar", resource_id=str(sar.pk)
                ),
                "cited_share": check_result["cited_share"],
                "numbers_verified": check_result["numbers_verified"],
                "phrasing": how,
            },
        )
    return sar


def sar_edit(*, actor, sar: SAR, text: str) -> SAR:
    """An officer's edit; refused (nothing stored) when a sentence lacks a known citation or states a
    number the facts do not hold."""

    check(actor, "sar", sar)
    if sar.status == SAR.Status.APPROVED:
        raise FinanceRefused("An approved SAR cannot be edited; draft a new one.")
    result = verify(text, sar.facts)
    if not result["ok"]:
        problems = [
            f"'{s['text'][:60]}': "
            + ("no citation" if not s["citations"] else "")
            + (f"unknown {', '.join(s['unknown_citations'])}" if s["unknown_citations"] else "")
            + (
                f"numbers not in the facts {', '.join(s['unverified_numbers'])}"
                if s["unverified_numbers"]
                else ""
            )
            for s in result["sentences"]
            if not s["cited"] or s["unverified_numbers"]
        ]
        raise FinanceRefused(
            "Every sentence must cite [A<alert>]/[T<transaction>] ids and state only numbers "
            "found in the facts: " + "; ".join(problems[:5])
            if problems
            else "the text is empty"
        )
    with transaction.atomic():
        sar.text = " ".join((text or "").split())
        sar.verification = {**result, "phrasing": ["edited"]}
        if actor.username not in sar.editors:
            sar.editors = [*sar.editors, actor.username]
        sar.save(update_fields=["text", "verification", "editors"])
        record(
            actor=actor,
            action="sar.edit",
            resource_type="sar",
            resource_id=str(sar.pk),
            outcome="succeeded",
            payload={
                "case": sar.case_id,
                **sealed_texts(
                    {"text": sar.text}, action="sar.edit", resource_type="sar", resource_id=str(sar.pk)
                ),
            },
        )
    return sar


def sar_approve(*, actor, sar: SAR) -> SAR:
    """The second officer: anyone who drafted or edited the SAR cannot approve it (four eyes)."""

    check(actor, "sar", sar)
    sar.refresh_from_db()
    if actor.username in sar.editors or sar.prepared_by_id == actor.pk:
        record(
            actor=actor,
            action="sar.approve",
            resource_type="sar",
            resource_id=str(sar.pk),
            outcome="denied",
            payload={"reason": "four eyes: a preparer or editor cannot approve", "editors": sar.editors},
        )
        raise FourEyesViolation("You drafted or edited this SAR; another compliance officer must approve it.")
    if sar.status == SAR.Status.APPROVED:
        raise FinanceRefused("The SAR is already approved.")
    with transaction.atomic():
        sar.status = SAR.Status.APPROVED
        sar.approved_by = actor
        sar.approved_at = timezone.now()
        sar.save(update_fields=["status", "approved_by", "approved_at"])
        record(
            actor=actor,
            action="sar.approve",
            resource_type="sar",
            resource_id=str(sar.pk),
            outcome="succeeded",
            payload={
                "case": sar.case_id,
                "text_sha256": hashlib.sha256(sar.text.encode()).hexdigest(),
                "editors": sar.editors,
            },
        )
    return sar


def sar_goaml_xml(sar: SAR) -> bytes:
    """A goAML-style report: the narrative, the reporting entity, the transactions and their parties."""
    facts = sar.facts
    report = ET.Element("report")
    ET.SubElement(report, "rentity_id").text = facts.get("team", "")
    ET.SubElement(report, "submission_code").text = "E"
    ET.SubElement(report, "report_code").text = "SAR"
    ET.SubElement(report, "entity_reference").text = f"CASE-{sar.case_id}-SAR-{sar.pk}"
    ET.SubElement(report, "submission_date").text = (sar.approved_at or sar.created_at).isoformat()
    ET.SubElement(report, "currency_code_local").text = (facts.get("currencies") or ["USD"])[0]
    ET.SubElement(report, "reason").text = sar.text
    ET.SubElement(report, "action").text = "Report filed after four-eyes approval."
    txs = ET.SubElement(report, "transactions")
    for tx in facts.get("transactions", []):
        node = ET.SubElement(txs, "transaction")
        ET.SubElement(node, "transactionnumber").text = str(tx["id"])
        ET.SubElement(node, "internal_ref_number").text = tx["ref"]
        ET.SubElement(node, "transaction_description").text = tx["format"] or "transfer"
        ET.SubElement(node, "date_transaction").text = tx["date"]
        ET.SubElement(node, "amount_local").text = f"{tx['amount']:.2f}"
        for side, account, country in (
            ("t_from", tx["from"], tx["src_country"]),
            ("t_to", tx["to"], tx["dst_country"]),
        ):
            party = ET.SubElement(node, side)
            acc = ET.SubElement(party, f"{side.split('_')[1]}_account")
            ET.SubElement(acc, "account").text = account
            ET.SubElement(acc, "currency_code").text = tx["currency"]
            ET.SubElement(party, f"{side.split('_')[1]}_country").text = country or "UNK"
    ET.indent(report)
    return ET.tostring(report, encoding="utf-8", xml_declaration=True)
