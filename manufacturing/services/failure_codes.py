"""The failure code tables (ISO 14224 style) from shared/data/work_orders/failure_codes.csv.

Secondary codes are the failure modes a work order is closed with (their primary code the parent);
the 22 ISO 14224 failure modes of the technician-text labels are modes too. Cause and action codes
are a small fixed list (ISO 14224 annex B style).
"""

from __future__ import annotations

import csv
from pathlib import Path

from django.db import transaction

from audit.services import record
from manufacturing.models import FailureCode

CAUSES = {
    "DES": "Design related",
    "FAB": "Fabrication / installation",
    "OPE": "Operation / use",
    "MNT": "Maintenance related",
    "WEA": "Wear and tear / ageing",
    "ENV": "Environment",
    "UNK": "Unknown",
}
# The 22 failure modes of the FMC-MWO2KG labels (shared/data/failure_modes), with the ISO 14224
# (Table B.15) three-letter codes where the standard has the mode; the four it lacks get codes of
# our own (ELE, CTM, LKG, FTR). The assistant's classifier speaks these labels.
ISO_MODES = {
    "AIR": "Abnormal instrument reading",
    "BRD": "Breakdown",
    "CTM": "Contamination",
    "ELE": "Electrical",
    "ERO": "Erratic output",
    "FTC": "Fail to close",
    "FTF": "Fail to function",
    "FTO": "Fail to open",
    "FTS": "Failure to start on demand",
    "STP": "Failure to stop on demand",
    "FTR": "Failure to rotate",
    "HIO": "High output",
    "LKG": "Leaking",
    "LOO": "Low output",
    "SER": "Minor in-service problems",
    "NOI": "Noise",
    "OTH": "Other",
    "OHE": "Overheating",
    "PLU": "Plugged / choked",
    "SPS": "Spurious stop",
    "STD": "Structural deficiency",
    "VIB": "Vibration",
}
ISO_CATEGORY = "ISO 14224 failure mode"
ACTIONS = {
    "REP": "Replace",
    "RPR": "Repair",
    "ADJ": "Adjust / calibrate",
    "CLN": "Clean / lubricate",
    "INS": "Inspect / test",
    "MOD": "Modify",
    "NON": "No action required",
}


@transaction.atomic
def failure_codes_import(*, path: Path, actor="command:import_work_orders") -> int:
    """Upsert failure modes from `path` and the fixed cause / action codes; returns the count written."""

    count = 0
    with Path(path).open(encoding="utf-8-sig", newline="") as handle:
        for row in csv.DictReader(handle):
            FailureCode.objects.update_or_create(
                kind=FailureCode.Kind.MODE,
                code=row["secondary_code"].strip(),
                defaults={
                    "description": row["secondary_code_description"].strip(),
                    "parent_code": row["primary_code"].strip(),
                    "category": row["category"].strip(),
                },
            )
            count += 1
    for code, description in ISO_MODES.items():
        FailureCode.objects.update_or_create(
            kind=FailureCode.Kind.MODE,
            code=code,
            defaults={"description": description, "category": ISO_CATEGORY},
        )
        count += 1
    for kind, table in ((FailureCode.Kind.CAUSE, CAUSES), (FailureCode.Kind.ACTION, ACTIONS)):
        for code, description in table.items():
            FailureCode.objects.update_or_create(kind=kind, code=code, defaults={"description": description})
            count += 1
    record(
        actor=actor,
        action="failure_code.import",
        resource_type="failure_code",
        outcome="succeeded",
        payload={"source": Path(path).name, "codes": count},
    )
    return count
