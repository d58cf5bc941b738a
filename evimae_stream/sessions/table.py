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
    """The file's text, or an InputError naming it when it cannot be read."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise InputError(f"{path}: file not found; check the path") from None
    except UnicodeDecodeError as e:
        raise format_error(
            path, None, f"not UTF-8 text ({e.reason})", "is this really a CSV file?"
        ) from None
    except OSError as e:
        raise InputError(f"{path}: cannot read ({e.strerror}); check permissions") from None


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
    text = read_text(path)
    lines = text.split("\n")
    complete_end = text.endswith("\n")
    if lines and lines[-1] == "":
        lines.pop()
    dropped = False
    if require_newline and not complete_end and lines:
        if not tolerate_truncated_tail:
            raise format_error(
                path, len(lines), "last row is cut off (no line end)", "remove that row"
            )
        log.warning("%s: dropped an incomplete last row %d (cut off by a crash?)", path, len(lines))
        lines.pop()
        dropped = True
    while lines and lines[-1].strip() == "":
        lines.pop()
    quoted = quoted and any('"' in line for line in lines)
    if quoted:
        split = list(csv.reader(line.rstrip("\r") for line in lines))
    else:
        split = [line.rstrip("\r").split(",") for line in lines]
    head: list[str] | None = None
    start = 0
    if header:
        if not lines:
            raise format_error(path, 1, "empty file, expected a header row", "check the file")
        head = [c.strip() for c in split[0]]
        start = 1
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
        if ncols is None:
            ncols = len(head)
    rows: list[list[str]] = []
    numbers: list[int] = []
    texts: list[str] = []
    last = len(lines) - 1
    for i in range(start, len(lines)):
        cells = split[i]
        if quoted and not cells:
            cells = [""]
        if ncols is None:
            ncols = len(cells)
        if len(cells) != ncols:
            if i == last and tolerate_truncated_tail and len(cells) < ncols:
                log.warning(
                    "%s: dropped a short last row %d (%d of %d fields; cut off by a crash?)",
                    path,
                    i + 1,
                    len(cells),
                    ncols,
                )
                dropped = True
                break
            problem = "blank line" if lines[i].strip() == "" else f"{len(cells)} fields"
            raise format_error(
                path,
                i + 1,
                f"{problem}, expected {ncols}",
                "fix or remove that row (truncated or corrupt file?)",
            )
        rows.append(cells)
        numbers.append(i + 1)
        texts.append(lines[i])
    return Table(Path(path), head, rows, numbers, dropped, texts, quoted)


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
            f"{what} {t[i]!r} does not increase (previous row {lines[i - 1]}: {t[i - 1]!r})",
            "timestamps must be strictly increasing; fix or remove that row",
        )
