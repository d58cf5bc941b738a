"""Show a session's labels, or export them: ``evimae-stream labels SESSION [--export wear|csv]``.

Without ``--export``: one line per segment and a count per action. ``--export wear`` writes
WEAR's ActivityNet-style annotation JSON (``database.<session>.{subset, duration, fps,
annotations: [{label, segment: [start, end], label_id}]}`` and ``label_dict``; ids are the
session's class order, so a WEAR-trained tool reads it — but it is WEAR's *format*, not WEAR's
18 classes, unless the labels are those); ``--export csv`` writes ``start_s,end_s,label``.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import sys
from collections import Counter
from pathlib import Path

from evimae_stream.errors import InputError

EXPORTS = ("wear", "csv")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``evimae-stream labels``."""
    parser.add_argument("session", type=Path, metavar="SESSION", help="a session to read")
    parser.add_argument("--export", choices=EXPORTS, help="write the labels in this format")
    parser.add_argument(
        "--out", type=Path, metavar="FILE", help="where --export writes (default: stdout)"
    )
    parser.add_argument(
        "--subset",
        default="Training",
        help="--export wear: the session's subset (Training, Validation, Test)",
    )


def wear_json(session, subset: str = "Training") -> dict:
    """The session's labels as a WEAR-style (ActivityNet) annotation document."""
    classes = list(session.classes or sorted({s.label for s in session.labels}))
    for s in session.labels:
        if s.label not in classes:
            classes.append(s.label)
    ids = {c: i for i, c in enumerate(classes)}
    fps = session.video.fps if session.video is not None else None
    name = Path(session.path).name
    annotations = [
        {
            "label": s.label,
            "segment": [round(s.start_s, 3), round(s.end_s, 3)],
            "label_id": ids[s.label],
        }
        for s in sorted(session.labels, key=lambda s: (s.start_s, s.end_s))
    ]
    entry = {"subset": subset, "duration": round(session.duration_s, 3), "fps": fps}
    entry["annotations"] = annotations
    return {"version": "evimae-stream labels", "database": {name: entry}, "label_dict": ids}


def labels_csv(session) -> str:
    """The session's labels as ``start_s,end_s,label`` rows (time order)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["start_s", "end_s", "label"])
    for s in sorted(session.labels, key=lambda s: (s.start_s, s.end_s)):
        w.writerow([f"{s.start_s:.3f}", f"{s.end_s:.3f}", s.label])
    return buf.getvalue()


def summary_lines(session) -> list[str]:
    """One line per segment (flagged: left open by a crash) and the seconds per action."""
    from evimae_stream.sessions.labels import recovered_segments

    flagged = set(recovered_segments(session.path)) if Path(session.path).is_dir() else set()
    lines = [f"{session.path}: {len(session.labels)} segments over {session.duration_s:.1f} s"]
    for s in sorted(session.labels, key=lambda s: s.start_s):
        mark = "   (recovered after a crash: check it)" if s in flagged else ""
        lines.append(f"  {s.start_s:8.2f}–{s.end_s:8.2f} s  {s.label}{mark}")
    total: Counter = Counter()
    for s in session.labels:
        total[s.label] += s.end_s - s.start_s
    for label, secs in sorted(total.items()):
        lines.append(f"  {label}: {secs:.1f} s")
    return lines


def run(args: argparse.Namespace) -> int:
    from evimae_stream.sessions import open_session

    if args.out is not None and args.export is None:
        raise InputError("--out is where --export writes; add --export wear|csv")
    session = open_session(args.session)
    try:
        if args.export is None:
            print("\n".join(summary_lines(session)))
            return 0
        if not session.labels:
            raise InputError(f"{args.session}: the session has no labels to export")
        if args.export == "wear":
            text = json.dumps(wear_json(session, args.subset), indent=2) + "\n"
        else:
            text = labels_csv(session)
    finally:
        session.close()
    if args.out is None:
        sys.stdout.write(text)
        return 0
    try:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise InputError(f"--out {args.out}: cannot write ({exc.strerror})") from None
    print(f"wrote {args.out} ({args.export}, {len(session.labels)} segments)", file=sys.stderr)
    return 0
