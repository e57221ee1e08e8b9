"""Vibration analysis of one waveform: ISO 10816-3 / 20816-3 velocity RMS and zone, spectra, envelope
analysis in the band chosen by spectral kurtosis (a kurtogram), bearing defect amplitudes and a fault call.

Everything is derived from the bearing geometry and the shaft speed given with the recording; no
frequency or threshold is tied to one machine. Heavy scipy imports happen inside the functions.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from manufacturing.analysis.bearings import BEARINGS, BearingGeometry, bearing_lookup, bearing_parse

__all__ = [
    "BEARINGS",
    "ISO_ZONE_LIMITS",
    "BearingGeometry",
    "VibrationAnalysis",
    "analyse",
    "bearing_lookup",
    "bearing_parse",
    "zone_classify",
    "zone_limits_for",
]

G = 9.80665
VELOCITY_BAND_HZ = (10.0, 1000.0)
# ISO 10816-3:2009 / ISO 20816-3:2022, Table A.1/A.2: zone boundaries A/B, B/C, C/D in mm/s RMS (10-1000 Hz).
ISO_ZONE_LIMITS: dict[tuple[str, str], tuple[float, float, float]] = {
    ("group1", "rigid"): (2.3, 4.5, 7.1),
    ("group1", "flexible"): (3.5, 7.1, 11.0),
    ("group2", "rigid"): (1.4, 2.8, 4.5),
    ("group2", "flexible"): (2.3, 4.5, 7.1),
}
ZONE_MEANING = {
    "A": "newly commissioned condition",
    "B": "acceptable for unrestricted long-term operation",
    "C": "unsatisfactory for long-term continuous operation; plan remedial action",
    "D": "severe enough to cause damage",
}
UNITS = {"g": "g", "m/s2": "m/s2", "m/s^2": "m/s2", "m/s²": "m/s2", "mm/s": "mm/s"}
FAULTS = ("outer_race", "inner_race", "ball")
# What an engineer reads for each fault call (the stored identifiers stay machine-readable).
FAULT_LABELS = {
    "": "no fault call (the asset has no bearing geometry)",
    "none": "no bearing defect found",
    "outer_race": "outer-race bearing defect",
    "inner_race": "inner-race bearing defect",
    "ball": "rolling-element (ball) bearing defect",
    "cage": "cage (train) bearing defect",
    "imbalance": "imbalance",
    "misalignment": "misalignment",
    "looseness": "mechanical looseness",
}
# the calls that name a defect (a bearing's, or a machine fault read from the spectrum), not "" or "none"
DEFECT_CALLS = frozenset(FAULT_LABELS) - {"", "none"}
# A defect line must stand this far (dB) above the local envelope-spectrum floor to count as seen.
LINE_DB = 6.0
# The fault call needs this much combined evidence (dB-like score, see _fault_scores).
CALL_SCORE = 8.0
MAX_POINTS = 2048


def fault_label(fault: str | None) -> str:
    """The human wording of a fault call ("outer_race" -> "outer-race bearing defect")."""
    key = (fault or "").strip().lower()
    return FAULT_LABELS.get(key, key.replace("_", " "))


def zone_limits_for(iso_group: str = "group2", foundation: str = "rigid", limits=None) -> dict[str, float]:
    """The A/B, B/C, C/D boundaries: `limits` when given (dict or 3 numbers), else the ISO default."""
    if limits:
        if isinstance(limits, dict):
            try:
                values = tuple(float(limits[key]) for key in ("A/B", "B/C", "C/D"))
            except KeyError as missing:
                raise ValueError(f"zone limits need keys A/B, B/C and C/D (missing {missing})") from None
        else:
            values = tuple(float(v) for v in limits)
            if len(values) != 3:
                raise ValueError("zone limits need three boundaries: A/B, B/C, C/D in mm/s")
    else:
        group = str(iso_group or "group2").lower().replace(" ", "")
        group = {"1": "group1", "2": "group2"}.get(group, group)
        key = (group, str(foundation or "rigid").lower())
        if key not in ISO_ZONE_LIMITS:
            raise ValueError(f"unknown ISO group/foundation {key}: use group1|group2 and rigid|flexible")
        values = ISO_ZONE_LIMITS[key]
    if not (0 < values[0] < values[1] < values[2]) or not all(map(math.isfinite, values)):
        raise ValueError(f"zone limits must be positive and increasing A/B < B/C < C/D (got {values})")
    return dict(zip(("A/B", "B/C", "C/D"), values, strict=True))


def zone_classify(rms_velocity: float, limits: dict[str, float]) -> str:
    """ISO zone of an RMS velocity: a value on a boundary belongs to the worse zone."""
    for zone, boundary in zip("ABC", ("A/B", "B/C", "C/D"), strict=True):
        if rms_velocity < limits[boundary]:
            return zone
    return "D"


@dataclass
class VibrationAnalysis:
    sample_rate: float
    rpm: float
    units: str
    duration_s: float
    rms_velocity: float
    peak: float
    rms: float
    crest_factor: float
    kurtosis: float
    zone: str
    zone_limits: dict[str, float]
    band_energies: list[dict]
    spectrum: dict
    envelope: dict
    fault_frequencies: dict[str, float] = field(default_factory=dict)
    fault_amplitudes: dict[str, dict] = field(default_factory=dict)
    fault: str = ""
    fault_confidence: float = 0.0
    evidence: list[str] = field(default_factory=list)
    bearing: dict | None = None
    measured_rpm: float | None = None  # the shaft speed the spectrum's harmonics show (near `rpm`)

    def to_dict(self) -> dict:
        return {
            "sample_rate": self.sample_rate,
            "rpm": self.rpm,
            "shaft_hz": self.rpm / 60.0,
            "measured_rpm": self.measured_rpm,
            "units": self.units,
            "duration_s": self.duration_s,
            "rms_velocity": self.rms_velocity,
            "rms_velocity_units": "mm/s RMS, 10-1000 Hz",
            "peak": self.peak,
            "rms": self.rms,
            "crest_factor": self.crest_factor,
            "kurtosis": self.kurtosis,
            "zone": self.zone,
            "zone_meaning": ZONE_MEANING[self.zone],
            "zone_limits": self.zone_limits,
            "band_energies": self.band_energies,
            "spectrum": self.spectrum,
            "envelope": self.envelope,
            "bearing": self.bearing,
            "fault_frequencies": self.fault_frequencies,
            "fault_amplitudes": self.fault_amplitudes,
            "fault": self.fault,
            "fault_label": fault_label(self.fault),
            "fault_confidence": self.fault_confidence,
            "evidence": self.evidence,
        }


SPEED_SEARCH = 0.03  # a given speed may be off by slip or a nameplate figure: the data decides within 3%
SPEED_HARMONICS = 8
# the median harmonic must stand this far above the floor (dB): the CWRU motor's stand 28-34 dB on
# average at its speed, chance alignments within the window 3-13 dB; a 1 s record (1 Hz bins) cannot
# place them
SPEED_MIN_DB = 10.0


def refine_shaft_hz(freqs: np.ndarray, amps: np.ndarray, shaft_hz: float) -> tuple[float, str]:
    """(shaft speed in Hz, how): within SPEED_SEARCH of `shaft_hz`, the speed whose first
    SPEED_HARMONICS multiples stand highest above the spectrum's local floor (a harmonic sum of dB
    heights on a fine grid: the 8th harmonic places the speed to 1/16 of a bin). Every rotating machine
    shows its 1x, 2x, 3x ...; a defect frequency 0.5% off is a line missed, and a motor's speed moves
    1-3% with its load. The given speed stands ("given") where no candidate's harmonics stand
    SPEED_MIN_DB clear, and where the best lies on the window's edge ("edge": the true speed is
    probably further off than the search)."""
    from scipy.ndimage import median_filter

    resolution = float(freqs[1] - freqs[0])
    top = int(min(SPEED_HARMONICS, freqs[-1] / (shaft_hz * (1 + SPEED_SEARCH)) - 1))
    if top < 1 or resolution <= 0:
        return shaft_hz, "given"
    upto = int((top + 1) * shaft_hz * (1 + SPEED_SEARCH) / resolution) + 2
    log = 20 * np.log10(np.maximum(amps[:upto], 1e-15))
    width = max(5, int(0.2 * shaft_hz / resolution) | 1)  # the floor: a running median over 0.2x
    excess = log - median_filter(log, size=width, mode="nearest")
    step = resolution / (2 * top)
    candidates = np.arange(shaft_hz * (1 - SPEED_SEARCH), shaft_hz * (1 + SPEED_SEARCH) + step, step)
    bins = np.rint(np.outer(candidates, np.arange(1, top + 1)) / resolution).astype(int)
    heights = excess[np.clip(bins, 0, excess.size - 1)]
    best = int(np.argmax(heights.mean(axis=1)))
    # a shaft shows every harmonic; a chance alignment with other lines (a defect's) only some
    if np.median(heights[best]) < SPEED_MIN_DB:
        return shaft_hz, "given"
    if best in (0, candidates.size - 1):
        return shaft_hz, "edge"
    return float(candidates[best]), "measured"


def velocity_rms(signal: np.ndarray, sample_rate: float, units: str, band=VELOCITY_BAND_HZ) -> float:
    """RMS velocity in mm/s over `band`, integrating acceleration in the frequency domain (Parseval)."""
    x = signal - signal.mean()
    n = x.size
    spectrum = np.fft.rfft(x)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    inside = (freqs >= band[0]) & (freqs <= band[1])
    if units == "mm/s":
        velocity = spectrum[inside]
    else:
        acceleration = spectrum[inside] * (G if units == "g" else 1.0)
        velocity = acceleration / (2j * math.pi * freqs[inside]) * 1000.0  # m/s -> mm/s
    # one-sided: each bin below Nyquist carries twice its power
    weights = np.where(freqs[inside] >= sample_rate / 2 - 1e-9, 1.0, 2.0)
    return float(math.sqrt(np.sum(weights * np.abs(velocity) ** 2)) / n)


def _pooled(freqs: np.ndarray, amps: np.ndarray, max_points: int = MAX_POINTS) -> dict:
    """Peak-preserving decimation of a spectrum for storage and charts."""
    if freqs.size > max_points:
        step = math.ceil(freqs.size / max_points)
        usable = freqs.size // step * step
        amps = amps[:usable].reshape(-1, step).max(axis=1)
        freqs = freqs[:usable].reshape(-1, step)[:, 0]
    return {"freq_hz": np.round(freqs, 3).tolist(), "amplitude": [float(f"{a:.5g}") for a in amps]}


def _band_energies(freqs, power, shaft_hz, nyquist) -> list[dict]:
    edges = [
        ("sub-synchronous", 0.0, 0.8 * shaft_hz),
        ("1x", 0.8 * shaft_hz, 1.2 * shaft_hz),
        ("2x", 1.8 * shaft_hz, 2.2 * shaft_hz),
        ("3x-10x", 2.5 * shaft_hz, 10.5 * shaft_hz),
        ("10x-1 kHz", 10.5 * shaft_hz, 1000.0),
        ("1-5 kHz", 1000.0, 5000.0),
        ("5 kHz+", 5000.0, nyquist),
    ]
    bands = []
    for name, low, high in edges:
        high = min(high, nyquist)
        if high <= low:
            continue
        inside = (freqs >= low) & (freqs < high)
        bands.append(
            {
                "band": name,
                "low_hz": round(low, 2),
                "high_hz": round(high, 2),
                "rms": float(math.sqrt(power[inside].sum())),
            }
        )
    return bands


def kurtogram(
    signal: np.ndarray, sample_rate: float, min_bandwidth: float, max_level: int = 7, segments: int = 8
) -> list[dict]:
    """Spectral kurtosis of the complex envelope in dyadic and 1/3-dyadic bands (Antoni's fast-kurtogram
    layout, FFT filters, half-overlapping bands), most impulsive first. The kurtosis is the median over
    `segments` stretches of the record, so a single spike cannot win a band (it does on real data)."""
    n = signal.size
    spectrum = np.fft.fft(signal - signal.mean())
    freqs = np.fft.fftfreq(n, 1.0 / sample_rate)
    nyquist = sample_rate / 2
    usable = n // segments * segments
    results = []
    for level in range(1, max_level + 1):
        for divisor in (2**level, 3 * 2 ** (level - 1)):
            width = nyquist / divisor
            if width < min_bandwidth:
                continue
            for start in np.arange(0.0, nyquist - width + 1e-9, width / 2):
                inside = (freqs >= start) & (freqs < start + width)
                power = np.abs(np.fft.ifft(np.where(inside, spectrum, 0.0))) ** 2
                stretches = power[:usable].reshape(segments, -1)
                mean_power = stretches.mean(axis=1)
                if np.any(mean_power <= 0):
                    continue
                kurt = float(np.median((stretches**2).mean(axis=1) / mean_power**2 - 2.0))
                results.append({"low_hz": float(start), "high_hz": float(start + width), "sk": kurt})
    results.sort(key=lambda band: -band["sk"])
    return results


def envelope_spectrum(signal: np.ndarray, sample_rate: float, low: float, high: float):
    """Amplitude spectrum of the (squared-free) envelope of the signal band-passed to [low, high]."""
    n = signal.size
    spectrum = np.fft.fft(signal - signal.mean())
    freqs = np.fft.fftfreq(n, 1.0 / sample_rate)
    analytic = np.fft.ifft(np.where((freqs >= low) & (freqs < high), 2 * spectrum, 0.0))
    envelope = np.abs(analytic)
    envelope -= envelope.mean()
    amps = np.abs(np.fft.rfft(envelope * np.hanning(n))) * 2 / (np.hanning(n).sum())
    return np.fft.rfftfreq(n, 1.0 / sample_rate), amps


def _line(freqs: np.ndarray, amps: np.ndarray, target: float) -> tuple[float, float, float]:
    """(frequency, amplitude, dB over the local floor) of the highest bin within the slip tolerance of
    `target` (0.5% + one bin); the floor is the median of the neighbourhood (+-max(10 bins, 20%))."""
    resolution = freqs[1] - freqs[0]
    tolerance = 0.005 * target + resolution
    lo, hi = np.searchsorted(freqs, [target - tolerance, target + tolerance])
    half = max(10 * resolution, 0.2 * target)
    flo, fhi = np.searchsorted(freqs, [target - half, target + half])
    if hi >= freqs.size or hi <= lo or flo >= fhi:
        return target, 0.0, 0.0
    index = lo + int(np.argmax(amps[lo:hi]))
    floor = np.median(np.concatenate([amps[flo:lo], amps[hi:fhi]])) if fhi - flo > hi - lo else amps[index]
    return (
        float(freqs[index]),
        float(amps[index]),
        20 * math.log10(max(amps[index], 1e-15) / max(floor, 1e-15)),
    )


# Detuned copies of each comb (all lines scaled by these factors) give the comb's chance level.
DETUNING = np.r_[np.linspace(0.80, 0.97, 35), np.linspace(1.03, 1.20, 35)]


def _combs(orders: dict[str, float], shaft_hz: float) -> dict[str, list[float]]:
    """The envelope lines each fault family produces (Hz), from the geometry and the shaft speed."""
    bpfo, bpfi, bsf, ftf = (orders[k] * shaft_hz for k in ("bpfo", "bpfi", "bsf", "ftf"))
    return {
        "outer_race": [h * bpfo for h in (1, 2, 3, 4)],
        "inner_race": [h * bpfi for h in (1, 2, 3)] + [bpfi - shaft_hz, bpfi + shaft_hz],
        # a ball defect strikes a race twice per ball spin, modulated by the cage carrying it through the load zone
        "ball": [k * 2 * bsf + j * ftf for k in (1, 2) for j in (-1, 0, 1)] + [bsf - ftf, bsf, bsf + ftf],
        "cage": [ftf, 2 * ftf, shaft_hz - ftf, shaft_hz + ftf, 2 * shaft_hz - ftf, 2 * shaft_hz + ftf],
    }


def _off_shaft_harmonics(lines: list[float], shaft_hz: float, sidebands: float = 0.0) -> list[float]:
    """The comb's lines that do not fall on a shaft harmonic (nor, given `sidebands`, on a harmonic's
    sidebands at that distance), which would lie inside the line's slip window (0.5%). Every machine shows
    1x, 2x, 3x ... of its shaft speed, so a defect line there proves nothing: the CWRU fan-end 6203's
    ball spin frequency is 1.994x the shaft, its 2xBSF line 3.988x."""

    kept = []
    for f in lines:
        near = [round(f / shaft_hz) * shaft_hz]
        if sidebands:
            near += [round((f - side) / shaft_hz) * shaft_hz + side for side in (sidebands, -sidebands)]
        # within the defect line's slip window (0.5%: a property of the geometry, not of the record)
        if all(abs(f - g) > 0.005 * f for g in near if g > 0):
            kept.append(f)
    return kept


def _comb_evidence(freqs, amps, lines: list[float]) -> tuple[float, float]:
    """Mean line height (dB) of a comb and its z-score against the same comb detuned (chance level)."""

    def height(scale: float) -> float:
        return float(np.mean([_line(freqs, amps, f * scale)[2] for f in lines]))

    tuned = height(1.0)
    chance = np.array([height(scale) for scale in DETUNING])
    return tuned, float((tuned - chance.mean()) / max(chance.std(), 0.5))


# Decision rule (dimensionless, the same for every machine; see docs/manufacturing.md):
RACE_DB, RACE_Z = 15.0, 4.0  # a race fault: a clean comb of its defect lines, far above chance
BALL_DB, BALL_Z = 8.0, 6.0  # a ball fault: the 2xBSF / BSF lines with their FTF sidebands
MODULATION_Z = 6.0  # or impulsive bearing energy at race lines too weak to call, modulated at the cage rate


def _fault_call(evidence: dict[str, dict]) -> tuple[str, float, list[str]]:
    notes = []
    race = max(("outer_race", "inner_race"), key=lambda name: evidence[name]["db"])
    r = evidence[race]
    if r["db"] >= RACE_DB and r["z"] >= RACE_Z:
        notes.append(
            f"{race.replace('_', ' ')}: defect comb {r['db']:.1f} dB above the local floor, z {r['z']:.1f} against detuned combs"
        )
        return race, _confidence(r["z"] / RACE_Z), notes
    b = evidence["ball"]
    if b["db"] >= BALL_DB and b["z"] >= BALL_Z:
        notes.append(f"ball: 2xBSF/BSF lines with FTF sidebands {b['db']:.1f} dB, z {b['z']:.1f}")
        return "ball", _confidence(b["z"] / BALL_Z), notes
    modulation = evidence["cage"]["z"] + max(evidence["outer_race"]["z"], evidence["inner_race"]["z"], b["z"])
    if modulation >= MODULATION_Z and evidence["cage"]["z"] >= MODULATION_Z / 4:
        notes.append(
            f"ball: no clean race line (best {race.replace('_', ' ')} {r['db']:.1f} dB), but bearing-defect energy "
            f"modulated at the cage frequency (cage sidebands z {evidence['cage']['z']:.1f}, combined z {modulation:.1f})"
        )
        return "ball", _confidence(modulation / MODULATION_Z), notes
    notes.append(
        f"no bearing defect: best comb {race.replace('_', ' ')} {r['db']:.1f} dB (z {r['z']:.1f}), "
        f"ball z {b['z']:.1f}, cage modulation z {evidence['cage']['z']:.1f}"
    )
    return "none", _confidence(RACE_Z / max(r["z"], 0.5) / 2), notes


def _confidence(ratio: float) -> float:
    return round(float(1 - math.exp(-max(ratio, 0.0) * 1.5)), 3)


def _envelope_evidence(signal, sample_rate, shaft_hz, bearing: BearingGeometry):
    orders = bearing.orders()
    frequencies = {name: order * shaft_hz for name, order in orders.items()}
    highest = max(frequencies.values())
    if 3 * highest + shaft_hz >= sample_rate / 4:
        raise ValueError(
            f"the sample rate {sample_rate:g} Hz is too low for bearing frequencies up to {highest:.0f} Hz: "
            "record at least 12 times the highest defect frequency"
        )
    bands = kurtogram(signal, sample_rate, min_bandwidth=3 * highest + shaft_hz)
    chosen = bands[0]
    combs = _combs(orders, shaft_hz)
    # evidence in the most impulsive band and in the broad band above the shaft harmonics, summed
    spectra = [
        envelope_spectrum(signal, sample_rate, chosen["low_hz"], chosen["high_hz"]),
        envelope_spectrum(signal, sample_rate, min(20 * shaft_hz, sample_rate / 8), sample_rate / 2),
    ]
    # a steady line gains 10 dB per decade of record length over the noise floor: quote heights at 1 s
    length_db = 10 * math.log10(signal.size / sample_rate)
    evidence = {}
    for name, lines in combs.items():
        # a ball's lines (2k x BSF +- FTF) can also be a shaft harmonic's cage sidebands (the 6203:
        # BSF 1.994x the shaft): those are dropped too; a race's lines keep theirs (the 6205's BPFO,
        # 9 x FTF, lies 0.5% from 4x - FTF and is the outer race's strongest line)
        informative = _off_shaft_harmonics(
            lines, shaft_hz, sidebands=frequencies["ftf"] if name == "ball" else 0.0
        )
        if not informative:  # every line of the family sits on a shaft harmonic: no evidence either way
            evidence[name] = {"db": 0.0, "z": 0.0, "lines": 0, "on_shaft_harmonics": len(lines)}
            continue
        scores = [_comb_evidence(freqs, amps, informative) for freqs, amps in spectra]
        evidence[name] = {
            "db": max(s[0] for s in scores) - length_db,
            "z": float(sum(s[1] for s in scores)),
            "lines": len(informative),
            "on_shaft_harmonics": len(lines) - len(informative),
        }
    freqs, amps = spectra[0]
    amplitudes = {}
    for name, hz in {**frequencies, "2xbsf": 2 * frequencies["bsf"]}.items():
        harmonics = []
        for h in (1, 2, 3):
            at, amplitude, db = _line(freqs, amps, h * hz)
            harmonics.append({"harmonic": h, "hz": round(at, 3), "amplitude": amplitude, "db": round(db, 2)})
        amplitudes[name] = {"hz": round(hz, 3), "order": round(hz / shaft_hz, 5), "harmonics": harmonics}
    return chosen, spectra[0], frequencies, amplitudes, evidence


def analyse(
    signal,
    sample_rate: float,
    rpm: float,
    bearing: BearingGeometry | None = None,
    units: str = "g",
    iso_group: str = "group2",
    foundation: str = "rigid",
    zone_limits=None,
) -> VibrationAnalysis:
    """Analyse one waveform. ValueError (with what to fix) for input that cannot be analysed."""
    x = np.asarray(signal, dtype=float).ravel()
    if x.size < 1024:
        raise ValueError(f"the recording has {x.size} samples; at least 1024 are needed")
    if not np.all(np.isfinite(x)):
        raise ValueError("the recording contains NaN or infinite samples")
    if not sample_rate or sample_rate <= 0 or not rpm or rpm <= 0:
        raise ValueError("sample rate and rpm must be positive numbers")
    unit = UNITS.get(str(units).strip().lower())
    if unit is None:
        raise ValueError(f"units must be one of g, m/s2, mm/s (got {units!r})")
    if sample_rate < 2 * VELOCITY_BAND_HZ[1]:
        raise ValueError(
            f"sample rate {sample_rate:g} Hz cannot cover the 10-1000 Hz ISO band; use >= 2000 Hz"
        )
    limits = zone_limits_for(iso_group, foundation, zone_limits)
    shaft_hz = rpm / 60.0
    x = x - x.mean()
    n = x.size
    rms = float(np.sqrt(np.mean(x**2)))
    peak = float(np.max(np.abs(x)))
    kurt = float(np.mean(x**4) / max(np.mean(x**2) ** 2, 1e-30))
    rms_velocity = velocity_rms(x, sample_rate, unit)
    window = np.hanning(n)
    amps = np.abs(np.fft.rfft(x * window)) * 2 / window.sum()
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    power = np.abs(np.fft.rfft(x)) ** 2 * 2 / n**2
    result = VibrationAnalysis(
        sample_rate=float(sample_rate),
        rpm=float(rpm),
        units=unit,
        duration_s=n / sample_rate,
        rms_velocity=rms_velocity,
        peak=peak,
        rms=rms,
        crest_factor=peak / rms if rms > 0 else 0.0,
        kurtosis=kurt,
        zone=zone_classify(rms_velocity, limits),
        zone_limits=limits,
        band_energies=_band_energies(freqs, power, shaft_hz, sample_rate / 2),
        spectrum={**_pooled(freqs, amps), "units": unit},
        envelope={},
    )
    if bearing is None:
        result.evidence = ["no bearing geometry: defect frequencies and the fault call need one"]
        return result
    measured_hz, how = refine_shaft_hz(freqs, amps, shaft_hz)
    result.measured_rpm = round(measured_hz * 60, 1) if how == "measured" else None
    band, (env_freqs, env_amps), frequencies, amplitudes, evidence = _envelope_evidence(
        x, sample_rate, measured_hz, bearing
    )
    shown = env_freqs <= max(4 * frequencies["bpfi"], 10 * shaft_hz)
    result.envelope = {
        **_pooled(env_freqs[shown], env_amps[shown]),
        "band_hz": [band["low_hz"], band["high_hz"]],
        "spectral_kurtosis": band["sk"],
    }
    result.bearing = bearing.to_dict()
    result.fault_frequencies = {name: round(hz, 3) for name, hz in frequencies.items()}
    result.fault_amplitudes = amplitudes
    result.fault, result.fault_confidence, notes = _fault_call(evidence)
    result.evidence = [
        f"envelope band {band['low_hz']:.0f}-{band['high_hz']:.0f} Hz chosen by spectral kurtosis ({band['sk']:.2f})",
        *notes,
    ]
    if how == "measured" and abs(measured_hz / shaft_hz - 1) >= 0.001:
        result.evidence.append(
            f"shaft speed {result.measured_rpm:g} rpm from the spectrum's 1x-{SPEED_HARMONICS}x lines "
            f"({rpm:g} rpm given); the defect frequencies use it"
        )
    elif how == "edge":
        result.evidence.append(
            f"the spectrum's shaft lines point to a speed more than {SPEED_SEARCH:.0%} from the "
            f"{rpm:g} rpm given: check the speed (the defect frequencies use the speed given)"
        )
    result.envelope["comb_evidence"] = {
        k: {"db": round(v["db"], 2), "z": round(v["z"], 2), "lines": v["lines"], "on_shaft_harmonics": v["on_shaft_harmonics"]}
        for k, v in evidence.items()
    }  # fmt: skip
    for name, v in evidence.items():
        if v["on_shaft_harmonics"]:
            result.evidence.append(
                f"{name.replace('_', ' ')}: {v['on_shaft_harmonics']} of {v['lines'] + v['on_shaft_harmonics']} "
                "defect lines fall on shaft harmonics (or, for a ball, their cage sidebands) and are not counted"
            )
    return result
