"""Rolling-element bearing geometry and its defect frequencies (orders of shaft speed)."""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass

MM_PER_INCH = 25.4


@dataclass(frozen=True)
class BearingGeometry:
    """Ball count, ball and pitch diameters (any one length unit, only their ratio matters), contact angle."""

    ball_count: int
    ball_diameter_mm: float
    pitch_diameter_mm: float
    contact_angle_deg: float = 0.0

    def __post_init__(self) -> None:
        if int(self.ball_count) != self.ball_count or self.ball_count < 3:
            raise ValueError(f"ball count must be a whole number of at least 3 (got {self.ball_count})")
        if not 0 < self.ball_diameter_mm < self.pitch_diameter_mm:
            raise ValueError(
                "ball diameter must be positive and smaller than the pitch diameter "
                f"(got ball {self.ball_diameter_mm}, pitch {self.pitch_diameter_mm})"
            )
        if not 0 <= self.contact_angle_deg < 90:
            raise ValueError(f"contact angle must be in [0, 90) degrees (got {self.contact_angle_deg})")

    def orders(self) -> dict[str, float]:
        """Defect frequencies as multiples of the shaft frequency (inner ring rotating, outer fixed)."""
        ratio = (
            self.ball_diameter_mm / self.pitch_diameter_mm * math.cos(math.radians(self.contact_angle_deg))
        )
        n = self.ball_count
        return {
            "bpfo": n / 2 * (1 - ratio),
            "bpfi": n / 2 * (1 + ratio),
            "bsf": self.pitch_diameter_mm / (2 * self.ball_diameter_mm) * (1 - ratio**2),
            "ftf": (1 - ratio) / 2,
        }

    def frequencies(self, shaft_hz: float) -> dict[str, float]:
        return {name: order * shaft_hz for name, order in self.orders().items()}

    def to_dict(self) -> dict:
        return asdict(self)


# Public catalogue geometry (SKF deep-groove ball bearings as used on the CWRU test rig), in mm.
BEARINGS: dict[str, BearingGeometry] = {
    "6205-2RS": BearingGeometry(9, 0.3126 * MM_PER_INCH, 1.537 * MM_PER_INCH, 0.0),
    "6203-2RS": BearingGeometry(8, 0.2656 * MM_PER_INCH, 1.122 * MM_PER_INCH, 0.0),
}

_KEYS = {"balls": "ball_count", "n": "ball_count", "ball_d": "ball_diameter_mm", "d": "ball_diameter_mm"}
_KEYS |= {"pitch_d": "pitch_diameter_mm", "pd": "pitch_diameter_mm", "angle": "contact_angle_deg"}
# the column names of bearing tables such as ../shared/data/bearings/bearing_geometry.csv
_KEYS |= {"n_rolling": "ball_count", "ball_count": "ball_count", "rolling_diameter": "ball_diameter_mm"}
_KEYS |= {
    "ball_diameter": "ball_diameter_mm",
    "rolling_d": "ball_diameter_mm",
    "pitch_diameter": "pitch_diameter_mm",
}
_KEYS |= {"contact_angle": "contact_angle_deg", "contact_angle_deg": "contact_angle_deg"}
# the textbook and ISO 15243 / 281 symbols: Z (or Nb) elements of diameter Dw (or Bd) on a pitch circle
# Dpw (or Pd), contact angle alpha; "D" (capital) is the pitch diameter beside "d", the ball's
_KEYS |= {"z": "ball_count", "nb": "ball_count", "dw": "ball_diameter_mm", "bd": "ball_diameter_mm"}
_KEYS |= {"dpw": "pitch_diameter_mm", "alpha": "contact_angle_deg", "phi": "contact_angle_deg"}
_KEYS |= {"theta": "contact_angle_deg", "beta": "contact_angle_deg"}
_UNIT = re.compile(r"^\s*([-+]?(?:\d+\.?\d*|\.\d+)(?:[eE][-+]?\d+)?)\s*(in|inch|mm|deg|°)?\s*$")


def _normalise(name: str) -> str:
    return "".join(ch for ch in name.upper() if ch.isalnum())


def bearing_lookup(name: str, extra: dict[str, BearingGeometry] | None = None) -> BearingGeometry | None:
    """A registered bearing by designation ("6205-2RS", "SKF 6205-2RS JEM" ...), or None."""
    wanted = _normalise(name)
    catalogue = {**BEARINGS, **(extra or {})}
    for designation, geometry in catalogue.items():
        key = _normalise(designation)
        if wanted == key or (len(key) >= 4 and key in wanted):
            return geometry
    # a base designation without its seal suffix ("6205" for 6205-2RS: the same balls and pitch)
    if len(wanted) >= 4:
        matches = {g for d, g in catalogue.items() if _normalise(d).startswith(wanted)}
        if len(matches) == 1:
            return matches.pop()
    return None


def bearing_parse(text: str, extra: dict[str, BearingGeometry] | None = None) -> BearingGeometry:
    """`balls=9,ball_d=0.3126,pitch_d=1.537,angle=0` (also the bearing table's column names: n_rolling,
    rolling_diameter, pitch_diameter, contact_angle_deg; a value may carry its unit, "0.3126 in", as long
    as both diameters use the same one) or a registered name; ValueError says what to fix."""
    text = text.strip()
    if "=" not in text:
        found = bearing_lookup(text, extra)
        if found is None:
            known = ", ".join(sorted({*BEARINGS, *(extra or {})}))
            raise ValueError(
                f"unknown bearing {text!r}: give a registered name ({known}) or "
                "balls=9,ball_d=0.3126,pitch_d=1.537,angle=0"
            )
        return found
    values: dict[str, float] = {}
    units: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        field = "pitch_diameter_mm" if key.strip() == "D" else _KEYS.get(key.strip().lower())
        if field is None:
            raise ValueError(f"unknown bearing field {key!r}: use balls, ball_d, pitch_d and angle")
        if field in values:
            raise ValueError(
                f"bearing field {key!r} is given twice (d is the ball's diameter, D the pitch's)"
            )
        number = _UNIT.match(value)  # "0.3126", "0.3126 in", "7.94mm", "0 deg"
        if number is None:
            raise ValueError(f"bearing field {key!r} needs a number (got {value!r})")
        values[field] = float(number.group(1))
        units[field] = {"inch": "in", None: ""}.get(number.group(2), number.group(2))
    missing = {"ball_count", "ball_diameter_mm", "pitch_diameter_mm"} - values.keys()
    if missing:
        raise ValueError("bearing geometry needs balls, ball_d and pitch_d (angle is optional)")
    lengths = {units["ball_diameter_mm"], units["pitch_diameter_mm"]}
    if len(lengths) > 1:
        if "" in lengths:
            raise ValueError("give both bearing diameters in the same unit, or a unit on each (in or mm)")
        for field in ("ball_diameter_mm", "pitch_diameter_mm"):  # inches and millimetres mixed
            values[field] *= MM_PER_INCH if units[field] == "in" else 1.0
    values["ball_count"] = (
        int(values["ball_count"]) if values["ball_count"].is_integer() else values["ball_count"]
    )
    return BearingGeometry(**values)
