"""Reliability figures of an asset from its completed work orders, as ISO 14224 (Annex C) and EN 15341
define them: failures (corrective work completed in the period), mean operating time between failures
(MTBF), mean time to restoration (MTTR, the downtime per failure), availability (uptime over the
period) and the failure modes that recur. Pure: the caller gathers the work orders and the meter."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

# one downtime on at least this share of at least this many failures reads as a default, not a measurement
SAME_DOWNTIME_SHARE = 0.6
SAME_DOWNTIME_MIN_FAILURES = 10


@dataclass
class Reliability:
    start: dt.datetime
    end: dt.datetime
    failures: int  # corrective work orders completed in the period
    preventive: int  # preventive work orders completed in the period
    downtime_hours: float  # of every work order completed in the period
    failure_downtime_hours: float  # of the corrective ones only
    failures_without_downtime: int  # corrective ones closed with no downtime recorded (MTTR reads low)
    operating_hours: float  # the running-hours meter's advance, else the period less the downtime
    operating_from: str  # "meter" or "calendar"
    modes: list[tuple[str, int]] = field(default_factory=list)  # failure mode codes, most frequent first
    # (hours, failures) when most failures record one and the same downtime (a form's default, not a
    # measured time: MTTR then says little); None otherwise
    same_downtime: tuple[float, int] | None = None

    @property
    def period_hours(self) -> float:
        return max((self.end - self.start).total_seconds() / 3600, 0.0)

    @property
    def mtbf_hours(self) -> float | None:
        """Mean operating time between failures; None without a failure (no estimate, not infinity)."""
        return self.operating_hours / self.failures if self.failures else None

    @property
    def mttr_hours(self) -> float | None:
        return self.failure_downtime_hours / self.failures if self.failures else None

    @property
    def availability_percent(self) -> float | None:
        return None if self.availability is None else 100 * self.availability

    @property
    def availability(self) -> float | None:
        """Uptime over the period (1 - downtime / period); None for an empty period."""
        if self.period_hours <= 0:
            return None
        return max(0.0, 1.0 - self.downtime_hours / self.period_hours)


def reliability(
    work_orders: Iterable[tuple[dt.datetime, bool, float, str]],
    *,
    start: dt.datetime,
    end: dt.datetime,
    meter_hours: float | None = None,
) -> Reliability:
    """The figures over [start, end] from `work_orders` given as (completed at, preventive, downtime
    hours, failure mode code), any order; those completed outside the period are left out.
    `meter_hours`: the running hours the meter advanced over the period, where it was read at both ends
    (a machine that runs one shift has a third of the calendar's operating time); without it the
    operating time is the period less the downtime."""
    inside = [w for w in work_orders if w[0] is not None and start <= w[0] <= end]
    corrective = [w for w in inside if not w[1]]
    downtime = sum(max(w[2] or 0.0, 0.0) for w in inside)
    period = max((end - start).total_seconds() / 3600, 0.0)
    if meter_hours is not None and meter_hours >= 0:
        operating, source = float(meter_hours), "meter"
    else:
        operating, source = max(period - downtime, 0.0), "calendar"
    return Reliability(
        start=start,
        end=end,
        failures=len(corrective),
        preventive=len(inside) - len(corrective),
        downtime_hours=downtime,
        failure_downtime_hours=sum(max(w[2] or 0.0, 0.0) for w in corrective),
        failures_without_downtime=sum(1 for w in corrective if not w[2] or w[2] <= 0),
        operating_hours=operating,
        operating_from=source,
        modes=Counter(w[3] for w in corrective if w[3]).most_common(),
        same_downtime=_same_downtime([w[2] for w in corrective]),
    )


def _same_downtime(downtimes: list[float | None]) -> tuple[float, int] | None:
    """The one downtime most failures record, when it covers SAME_DOWNTIME_SHARE of them (at least
    SAME_DOWNTIME_MIN_FAILURES): real repairs do not all take the same time to the minute."""
    recorded = [round(hours, 2) for hours in downtimes if hours and hours > 0]
    if len(recorded) < SAME_DOWNTIME_MIN_FAILURES:
        return None
    hours, count = Counter(recorded).most_common(1)[0]
    return (hours, count) if count >= SAME_DOWNTIME_SHARE * len(recorded) else None
