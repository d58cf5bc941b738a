"""Reading small text tables (CSV) with errors that name the file and the row.

Every session reader goes through here so that a malformed file always gives one
:class:`~evimae_stream.errors.FormatError` line of the form
``<file>: row <n>: <problem>; <what to do>``, where ``n`` is the 1-based line number a text
editor shows.
"""

from __future__ import annotations

import csv
import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from evimae_stream.errors import FormatError, InputError

log = logging.getLogger(__name__)


@dataclass
class Table:
    """Rows of a CSV file split into cells.

    ``rows[i]`` is the list of cells of the file's line ``line_numbers[i]`` (1-based) and
    ``lines[i]`` that line's text (for numpy's fast parser).
    ``dropped_tail`` is True when an incomplete last line was dropped (see :func:`read_table`).
    """

    path: Path
    header: list[str] | None
    rows: list[list[str]]
    line_numbers: list[int]
    dropped_tail: bool = False
    lines: list[str] | None = None
    quoted: bool = False


def format_error(path: Path, row: int | None, problem: str, fix: str) -> FormatError:
    """A one-line FormatError naming the file (and row when known)."""
    where = f"{path}: row {row}" if row is not None else f"{path}"
    return FormatError(f"{where}: {problem}; {fix}")


def read_text(path: Path) -> str:
    """The file's text, or an InputError naming it (and the row of a byte that is not UTF-8)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check the path") from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror}); check permissions") from None
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as e:
        row = raw.count(b"\n", 0, e.start) + 1
        raise format_error(
            path,
            row,
            f"byte 0x{raw[e.start]:02x} at offset {e.start} is not UTF-8 ({e.reason})",
            "save the file as UTF-8 text (or fix that byte)",
        ) from None


def first_line(path: Path, limit: int = 1 << 16) -> str | None:
    """The first line of a regular file, bytes that are not UTF-8 replaced (for recognising a
    format by its header: a bad byte further on is the reader's error to report, with its row);
    None when it cannot be read."""
    try:
        if not Path(path).is_file():
            return None
        with open(path, "rb") as f:
            head = f.readline(limit)
    except OSError:
        return None
    return head.decode("utf-8", errors="replace")


def read_table(
    path: Path,
    *,
    header: bool,
    expect: list[str] | None = None,
    require: list[str] | None = None,
    require_hint: str = "check the header row",
    ncols: int | None = None,
    require_newline: bool = False,
    tolerate_truncated_tail: bool = False,
    quoted: bool = False,
) -> Table:
    """Split a CSV file (no quoting) into cells, checking the column count of every row.

    ``header``: the first line is a header (its cell count fixes ``ncols`` when not given);
    ``expect``: the header it must be; ``require``: names it must contain (``require_hint``
    says what to do otherwise); both checked before any row.
    ``require_newline``: a last line without a terminating newline is incomplete (our crash-safe
    files only ever write whole lines, so such a line is a write cut off by a crash).
    ``tolerate_truncated_tail``: an incomplete or short *last* row is dropped with a warning
    instead of being an error. A short row anywhere else is always an error.
    ``quoted``: cells may be "quoted" CSV-style (slower; otherwise a plain split on commas).
    Blank lines at the end are ignored; a blank line in the middle is an error.
    """
    lines, dropped = _whole_lines(path, require_newline, tolerate_truncated_tail)
    quoted = quoted and any('"' in line for line in lines)
    if quoted:
        split = list(csv.reader(line.rstrip("\r") for line in lines))
    else:
        split = [line.rstrip("\r").split(",") for line in lines]
    head: list[str] | None = None
    if header:
        head = _check_header(path, lines, split, expect, require, require_hint)
        ncols = len(head) if ncols is None else ncols
    table = Table(Path(path), head, [], [], dropped, [], quoted)
    _add_rows(table, lines, split, 1 if header else 0, ncols, tolerate_truncated_tail)
    return table


def _whole_lines(
    path: Path, require_newline: bool, tolerate_truncated_tail: bool
) -> tuple[list[str], bool]:
    """The file's lines without trailing blank ones, and whether an incomplete last line (no
    line end where ``require_newline``) was dropped (else it is an error, see
    :func:`read_table`)."""
    text = read_text(path)
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    dropped = False
    if require_newline and not text.endswith("\n") and lines:
        if not tolerate_truncated_tail:
            raise format_error(
                path, len(lines), "last row is cut off (no line end)", "remove that row"
            )
        log.warning("%s: dropped an incomplete last row %d (cut off by a crash?)", path, len(lines))
        lines.pop()
        dropped = True
    while lines and lines[-1].strip() == "":
        lines.pop()
    return lines, dropped


def _check_header(
    path: Path,
    lines: list[str],
    split: list[list[str]],
    expect: list[str] | None,
    require: list[str] | None,
    require_hint: str,
) -> list[str]:
    """The header row's names, checked against ``expect`` and ``require``."""
    if not lines:
        raise format_error(path, 1, "empty file, expected a header row", "check the file")
    head = [c.strip() for c in split[0]]
    if expect is not None and head != expect:
        raise format_error(
            path,
            1,
            f"header {','.join(head)!r}, expected {','.join(expect)!r}",
            "restore the header row (is this the right kind of file?)",
        )
    missing = [c for c in require or [] if c not in head]
    if missing:
        raise format_error(path, 1, f"missing column(s) {', '.join(missing)}", require_hint)
    return head


def _add_rows(
    table: Table,
    lines: list[str],
    split: list[list[str]],
    start: int,
    ncols: int | None,
    tolerate_truncated_tail: bool,
) -> None:
    """Append the rows from line index ``start`` on to ``table``, each with ``ncols`` cells
    (default: the first row's count); a short last row is dropped where tolerated."""
    last = len(lines) - 1
    for i in range(start, len(lines)):
        cells = split[i]
        if table.quoted and not cells:
            cells = [""]
        if ncols is None:
            ncols = len(cells)
        if len(cells) != ncols:
            if i == last and tolerate_truncated_tail and len(cells) < ncols:
                log.warning(
                    "%s: dropped a short last row %d (%d of %d fields; cut off by a crash?)",
                    table.path,
                    i + 1,
                    len(cells),
                    ncols,
                )
                table.dropped_tail = True
                return
            problem = "blank line" if lines[i].strip() == "" else f"{len(cells)} fields"
            raise format_error(
                table.path,
                i + 1,
                f"{problem}, expected {ncols}",
                "fix or remove that row (truncated or corrupt file?)",
            )
        table.rows.append(cells)
        table.line_numbers.append(i + 1)
        table.lines.append(lines[i])


def _fast_parse(table: Table, cols: list[int], dtype) -> np.ndarray | None:
    """numpy's C parser on the table's lines; None when any cell does not parse."""
    if table.lines is None or not table.rows:
        return None
    try:
        return np.loadtxt(
            table.lines,
            delimiter=",",
            usecols=cols,
            ndmin=2,
            dtype=dtype,
            comments=None,
            quotechar='"' if table.quoted else None,
        )
    except (ValueError, OverflowError):
        return None


def numeric_column(
    table: Table, col: int, name: str, dtype=np.float64, allow_empty: bool = False
) -> np.ndarray:
    """Column ``col`` of ``table`` as numbers; empty cells become NaN when ``allow_empty``.

    Raises FormatError naming the first row whose cell is not a number.
    """
    empties = sum(1 for r in table.rows if not r[col].strip()) if allow_empty else 0
    if empties and empties == len(table.rows):
        return np.full(len(table.rows), np.nan)
    if not empties:
        fast = _fast_parse(table, [col], dtype)
        if fast is not None and (np.issubdtype(dtype, np.integer) or np.isfinite(fast).all()):
            return fast[:, 0]
    cells = [r[col].strip() for r in table.rows]
    if allow_empty:
        cells = [c if c else "nan" for c in cells]
    try:
        if np.issubdtype(dtype, np.integer):
            return np.array([int(c) for c in cells], dtype=dtype)
        arr = np.array(cells, dtype=np.str_).astype(dtype) if cells else np.empty(0, dtype)
    except (ValueError, OverflowError):
        arr = None
    if arr is not None and (allow_empty or bool(np.isfinite(arr).all())):
        return arr
    for cell, line in zip(cells, table.line_numbers, strict=True):
        try:
            v = int(cell) if np.issubdtype(dtype, np.integer) else float(cell)
        except (ValueError, OverflowError):
            v = None
        if v is None or (not np.issubdtype(dtype, np.integer) and not np.isfinite(v)):
            if allow_empty and cell == "nan":
                continue
            raise format_error(
                table.path,
                line,
                f"column {name!r}: {cell!r} is not a finite number",
                "fix or remove that row",
            )
    raise format_error(table.path, None, f"column {name!r}: unreadable numbers", "check the file")


def numeric_block(table: Table, cols: list[int], names: list[str]) -> np.ndarray:
    """Columns ``cols`` as an (N, len(cols)) float64 array (errors name row and column)."""
    if not table.rows:
        return np.empty((0, len(cols)), dtype=np.float64)
    fast = _fast_parse(table, cols, np.float64)
    if fast is not None and np.isfinite(fast).all():
        return fast
    try:
        cells = np.array([[r[c] for c in cols] for r in table.rows], dtype=np.str_)
        arr = np.char.strip(cells).astype(np.float64)
        if np.isfinite(arr).all():
            return arr
    except ValueError:
        pass
    out = np.empty((len(table.rows), len(cols)), dtype=np.float64)
    for j, (c, name) in enumerate(zip(cols, names, strict=True)):
        out[:, j] = numeric_column(table, c, name)
    return out


#: How far a stream's measured sample interval may be from the nominal one (fraction) before the
#: file and its declared rate are taken to disagree.
RATE_TOLERANCE = 0.3
#: Intervals a stream needs before its rate is checked: fewer samples (a sensor that connected
#: just before the end, one batched read) say nothing reliable about a rate.
MIN_RATE_INTERVALS = 10


@dataclass(frozen=True)
class RateEstimate:
    """How fast a stream's timestamps run, three ways (samples per second).

    ``by_median`` / ``by_quartile``: from the median / lower-quartile interval — immune to
    jitter and to dropped samples (long intervals) up to about 50 % / 75 % of the intervals;
    ``by_count``: intervals over the span — immune to batched arrivals (runs of near-zero
    intervals, as a BLE notification carrying several samples gives) and to jitter.
    """

    by_median: float
    by_quartile: float
    by_count: float

    def matches(self, nominal_hz: float, tolerance: float) -> bool:
        """Whether any estimate is within ``tolerance`` of ``nominal_hz`` (as an interval)."""
        rates = (self.by_median, self.by_quartile, self.by_count)
        return any(abs(nominal_hz / r - 1.0) <= tolerance for r in rates)


def measured_rate(t_s: np.ndarray) -> RateEstimate:
    """The :class:`RateEstimate` of increasing times ``t_s`` in seconds (at least two)."""
    t = np.asarray(t_s, dtype=np.float64)
    d = np.diff(t)
    q25, med = np.quantile(d, (0.25, 0.5))
    span = float(t[-1] - t[0])

    def rate(interval: float) -> float:
        return 1.0 / interval if interval > 0 else np.inf

    return RateEstimate(rate(float(med)), rate(float(q25)), rate(span / len(d)))


def check_rate(
    path: Path,
    t_s: np.ndarray,
    lines: list[int],
    nominal_hz: float,
    what: str,
    fix: str,
    *,
    min_intervals: int = MIN_RATE_INTERVALS,
    tolerance: float = RATE_TOLERANCE,
) -> RateEstimate | None:
    """FormatError unless the times ``t_s`` (seconds, increasing) run at about ``nominal_hz``.

    Passes when the median or lower-quartile interval, or the mean interval (span over count),
    is within ``tolerance`` of the nominal period: jitter, dropped samples (a camera delivering
    20 of its 30 fps) and batched arrivals pass, while a wrong declared rate (off by 1.5x or
    more) or wrong time units fail. Not caught: batched arrivals AND more than ~30 % of the
    samples lost. Streams with fewer than ``min_intervals`` intervals are not checked (None).
    The message names the file, the rows measured and the measured and declared rates.
    """
    if len(t_s) < min_intervals + 1:
        return None
    est = measured_rate(t_s)
    if est.matches(nominal_hz, tolerance):
        return est
    rows = f"rows {lines[0]}-{lines[-1]}" if lines else f"{len(t_s)} samples"
    raise format_error(
        path,
        None,
        f"{what}: timestamps of {rows} give {est.by_median:.4g} samples/s (median interval "
        f"{1e3 / est.by_median:.4g} ms, lower quartile {1e3 / est.by_quartile:.4g} ms; "
        f"{est.by_count:.4g}/s over the whole span), but the declared rate is "
        f"{nominal_hz:g}/s (more than {tolerance:.0%} apart)",
        fix,
    )


def check_increasing(path: Path, t: np.ndarray, lines: list[int], what: str) -> None:
    """FormatError naming the first row whose ``t`` does not increase over the previous row."""
    if len(t) < 2:
        return
    bad = np.flatnonzero(np.diff(t) <= 0)
    if len(bad):
        i = int(bad[0]) + 1
        raise format_error(
            path,
            lines[i],
            f"{what} {t[i].item()!r} does not increase "
            f"(previous row {lines[i - 1]}: {t[i - 1].item()!r})",
            "timestamps must be strictly increasing; fix or remove that row",
        )


#: The longest pause between two consecutive timestamps of one stream, and the farthest a
#: stream's first timestamp may lie from the session start (seconds). No sensor of a session
#: pauses for an hour; a larger jump is a corrupt timestamp, and replaying it would be an
#: endless run of empty windows.
MAX_GAP_S = 3600.0


def check_span(
    path: Path, t_s: np.ndarray, lines: list[int], what: str, fix: str, from_start: bool = False
) -> None:
    """FormatError naming the first row whose time (seconds, increasing) lies more than
    :data:`MAX_GAP_S` after the previous row's, or, with ``from_start``, a first row that far
    from the session start (``t = 0``)."""
    if not len(t_s):
        return
    if from_start and abs(float(t_s[0])) > MAX_GAP_S:
        raise format_error(
            path,
            lines[0],
            f"{what} {float(t_s[0]):.6g} s from the session start (more than {MAX_GAP_S:g} s)",
            fix,
        )
    jumps = np.flatnonzero(np.diff(t_s) > MAX_GAP_S)
    if len(jumps):
        i = int(jumps[0]) + 1
        raise format_error(
            path,
            lines[i],
            f"{what} jumps {float(t_s[i] - t_s[i - 1]):.6g} s after the previous row "
            f"(more than {MAX_GAP_S:g} s: a corrupt timestamp?)",
            fix,
        )
