"""Reading a vibration recording from the file an engineer has: one reader for the upload and for
`analyse_vibration`, so both accept and refuse the same files with the same words.

- `.npy`: a 1-D array, or a 2-D array of one column; with several columns, `channel` is the column
  number (0-based). Never unpickled.
- `.csv` / `.txt`: comma, semicolon, tab or space separated (with semicolons or tabs, a decimal comma
  is read as a point, as spreadsheets in much of Europe write "0,0123;-0,0456"), `#` comments. An
  optional header row names the columns; `channel`
  is a column name or number. A time column (named time, t, time_s, seconds or timestamp, or, without a
  header, a first column that rises in equal steps) is not vibration: it is left out and gives the
  sample rate. Without `channel` the first column that is not time is read, as before.
- `.mat` (MATLAB 5-7.2, as the CWRU bearing files come): `channel` is a variable name or the end of
  one (DE, FE or BA pick `X097_DE_time` and the like); without it the only vector long enough, or the
  drive-end one. A scalar variable whose name ends in RPM gives the shaft speed.

A file whose name has none of these endings is read by its content (a .npy or MATLAB header, else text
as a CSV): the IMS/NASA bearing files, tab separated and named by their time, need no renaming.

`read_waveform` raises ValueError with a message that says what to change.
"""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass

import numpy as np

MIN_SAMPLES = 1024
TIME_NAMES = {"time", "t", "time_s", "times", "seconds", "timestamp", "time (s)", "zeit", "temps", "tiempo"}
FORMATS = ("npy", "csv", "mat")


class _Refused(ValueError):
    """What the file holds cannot be read as a waveform; the message says what to change."""


@dataclass
class Waveform:
    fmt: str
    signal: np.ndarray
    channel: str = ""  # the column or variable read, where the file had several
    rpm: float | None = None  # from the file (a .mat RPM variable)
    sample_rate: float | None = None  # from the file's time column


def sample_rate_of(wave: Waveform, given: float | None) -> float | None:
    """The sample rate to analyse at: the one given, else the file's (a time column); one given that
    contradicts the file's by more than 1% is refused (ValueError)."""
    if wave.sample_rate is not None and given and abs(given - wave.sample_rate) > 0.01 * wave.sample_rate:
        raise ValueError(
            f"the file's time column gives {wave.sample_rate:g} samples per second, not {given:g}; "
            "leave the sample rate out to use the file's, or correct it"
        )
    return given or wave.sample_rate


def file_format(name: str) -> str:
    lower = name.lower()
    if lower.endswith(".npy"):
        return "npy"
    if lower.endswith((".csv", ".txt")):
        return "csv"
    if lower.endswith(".mat"):
        return "mat"
    return ""


def _sniffed(data: bytes) -> str:
    """The format of a file whose name does not say (an IMS/NASA bearing file is named by its time,
    2004.02.12.10.32.39): a .npy or MATLAB 5 header, else text ("csv"), else ""."""
    if data.startswith(b"\x93NUMPY"):
        return "npy"
    if data.startswith(b"MATLAB 5.0 MAT-file"):
        return "mat"
    try:
        data[:65536].decode("utf-8")
    except UnicodeDecodeError:
        return ""
    return "csv" if b"\x00" not in data[:65536] else ""


def read_waveform(name: str, data: bytes, channel: str = "") -> Waveform:
    fmt = file_format(name)
    unnamed = not fmt
    fmt = fmt or _sniffed(data)
    refusal = f"{name!r}: upload a .csv (a column of samples), a .npy array or a MATLAB .mat file"
    if not fmt:
        raise ValueError(refusal)
    channel = (channel or "").strip()
    try:
        reader = {"npy": _npy, "csv": _csv, "mat": _mat}[fmt]
        wave = reader(data, channel)
    except _Refused as error:
        if unnamed:  # read by its content and not what it seemed: say what is accepted
            raise ValueError(f"{refusal} (read as {fmt}: {error})"[:500]) from None
        raise ValueError(f"{name!r}: {error}"[:500]) from None
    # any reader error is the file's fault: numpy raises ValueError, SyntaxError, EOFError... on a bad header
    except Exception as error:
        if unnamed:
            raise ValueError(f"{refusal} (read as {fmt}: {type(error).__name__}: {error})"[:500]) from None
        raise ValueError(
            f"{name!r} could not be read as {fmt}: {type(error).__name__}: {error}"[:500]
        ) from None
    wave.fmt = fmt
    return wave


def _npy(data: bytes, channel: str) -> Waveform:
    array = np.load(io.BytesIO(data), allow_pickle=False)
    if array.dtype.kind not in "iuf":
        raise _Refused(f"the array holds {array.dtype} values, not numbers")
    array = np.asarray(array, dtype=float)
    if array.ndim == 2 and 1 in array.shape:
        array = array.ravel()
    if array.ndim == 1:
        if channel not in ("", "0"):
            raise _Refused(f"the array has one channel; channel {channel!r} does not exist")
        return Waveform("npy", array)
    if array.ndim != 2:
        raise _Refused(f"a {array.ndim}-D array: give a 1-D array of samples, or one column per channel")
    columns = array.shape[1]
    if channel == "":
        raise _Refused(f"the array has {columns} columns (channels); choose one with channel 0-{columns - 1}")
    index = _index(channel, columns)
    return Waveform("npy", array[:, index], channel=str(index))


def _index(channel: str, count: int) -> int:
    try:
        index = int(channel)
    except ValueError:
        raise _Refused(f"channel {channel!r} is not a column number (0-{count - 1})") from None
    if not 0 <= index < count:
        raise _Refused(f"channel {index} does not exist: the columns are 0-{count - 1}")
    return index


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def column_layout(line: str) -> tuple[str | None, bool]:
    """The column separator of a data row (None: runs of spaces) and whether its decimal mark is a
    comma (only with semicolons or tabs between the columns: "0,0123;-0,0456")."""
    for delimiter in (";", "\t"):
        if delimiter in line:
            return delimiter, "," in line
    if "," in line:
        return ",", False
    return (None, False) if len(line.split()) > 1 else (",", False)


def _cells(line: str, delimiter: str | None) -> list[str]:
    return line.split() if delimiter is None else next(csv.reader([line], delimiter=delimiter))


def _csv(data: bytes, channel: str) -> Waveform:
    text = data.decode("utf-8-sig")
    lines = [line for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]
    if not lines:
        raise _Refused("no samples")
    delimiter, decimal_comma = column_layout(lines[1] if len(lines) > 1 else lines[0])
    first = _cells(lines[0], delimiter)
    header = None
    if not all(_number(cell.replace(",", ".") if decimal_comma else cell) for cell in first):
        header = [cell.strip() for cell in first]
        lines = lines[1:]
        if not lines:
            raise _Refused("no samples after the header row")
    if header is not None and len(header) == 1 and delimiter == ",":  # one named column: "0,0123" is a number
        delimiter, decimal_comma = None, True
    if header is None and delimiter == "," and _decimal_commas(lines):  # "0,0123" / "-0,0456" unnamed
        delimiter, decimal_comma = None, True
    if decimal_comma:
        lines = [line.replace(",", ".") for line in lines]
    values = np.loadtxt(io.StringIO("\n".join(lines)), delimiter=delimiter, ndmin=2)
    columns = values.shape[1]
    if header is not None and len(header) != columns:
        raise _Refused(f"the header names {len(header)} columns, the rows have {columns}")
    names = header or [str(i) for i in range(columns)]
    time = next((i for i, n in enumerate(names) if n.lower() in TIME_NAMES), None)
    if time is None and header is None and columns > 1 and _rises_evenly(values[:, 0]):
        time = 0
    sample_rate = None
    if time is not None:
        steps = np.diff(values[:, time])
        if steps.size == 0 or not _rises_evenly(values[:, time]):
            raise _Refused(f"the time column {names[time]!r} does not rise in equal steps")
        sample_rate = float(1.0 / np.median(steps))
    if channel:
        if channel in names:
            index = names.index(channel)
        elif header is not None and not _number(channel):
            raise _Refused(f"no column {channel!r}; the columns are {', '.join(names)}")
        else:
            index = _index(channel, columns)
        if index == time:
            raise _Refused(f"column {names[index]!r} is the time axis, not a vibration channel")
    else:
        index = next((i for i in range(columns) if i != time), None)
        if index is None:
            raise _Refused("the only column is the time axis; add the vibration samples")
    chosen = names[index] if columns > 1 else ""
    return Waveform("csv", values[:, index], channel=chosen, sample_rate=sample_rate)


def _decimal_commas(lines: list[str]) -> bool:
    """Whether comma-separated rows without a header are one column of decimal commas ("0,0123",
    "-0,0456", as a spreadsheet in most of Europe saves one column) rather than two columns of whole
    numbers: every row is a whole number, or two whole numbers around one comma, nothing has a point,
    and some row shows what no column of whole numbers does: "-0" before the comma, or digits after
    it that start with a 0 ("0123"). Vibration swings around zero, so both come early in a real one."""
    telling = False
    for line in lines:
        cells = [cell.strip() for cell in line.split(",")]
        if len(cells) > 2 or not all(cell.lstrip("+-").isdigit() for cell in cells):
            return False  # another layout (or a point, a word, an exponent): read as before
        if len(cells) == 2 and (cells[0] in ("-0", "+0") or (len(cells[1]) > 1 and cells[1][0] == "0")):
            telling = True
    return telling


def _rises_evenly(column: np.ndarray) -> bool:
    steps = np.diff(column)
    if steps.size < 2 or not np.all(steps > 0):
        return False
    return bool(np.ptp(steps) <= 1e-3 * np.median(steps) + 1e-12)


def _mat(data: bytes, channel: str) -> Waveform:
    from scipy.io import loadmat

    try:
        variables = loadmat(io.BytesIO(data))
    except NotImplementedError:
        raise _Refused(
            "a MATLAB v7.3 (HDF5) file is not read here: save it with -v7, or export a .npy or .csv"
        ) from None
    numeric = {
        name: np.asarray(value, dtype=float)
        for name, value in variables.items()
        if not name.startswith("__") and isinstance(value, np.ndarray) and value.dtype.kind in "iuf"
    }
    vectors = {
        name: v.ravel() for name, v in numeric.items() if v.ndim == 1 or (v.ndim == 2 and 1 in v.shape)
    }
    long = {name: v for name, v in vectors.items() if v.size >= MIN_SAMPLES}
    rpm = next(
        (float(v.ravel()[0]) for name, v in numeric.items() if name.upper().endswith("RPM") and v.size == 1),
        None,
    )
    if channel:
        matches = [name for name in long if name == channel] or [
            name for name in long if name.upper().endswith(f"_{channel.upper()}_TIME")
        ]
        if len(matches) != 1:
            raise _Refused(
                f"no single vibration variable {channel!r}; the file has {', '.join(sorted(long)) or 'none'}"
            )
        chosen = matches[0]
    elif len(long) == 1:
        chosen = next(iter(long))
    else:
        drive_end = [name for name in long if name.upper().endswith("_DE_TIME")]
        if len(drive_end) != 1:
            raise _Refused(
                f"the file has {len(long)} vibration variables ({', '.join(sorted(long)) or 'none'} of at "
                f"least {MIN_SAMPLES} samples); choose one with channel"
            )
        chosen = drive_end[0]
    return Waveform("mat", long[chosen], channel=chosen, rpm=rpm)
