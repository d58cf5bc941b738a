"""The validation split held out of the training sessions: whole subjects or whole sessions,
never random windows (neighbouring windows overlap, so a random split scores memory, not
generalisation), and never by default the tail of each session (sequential recordings would
validate on their last activities only).

See :class:`~training.config.DataSection` for ``split_by`` and ``val_fraction``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

import numpy as np

from evimae_stream.errors import InputError

log = logging.getLogger(__name__)


def session_subject(meta: dict) -> str | None:
    """Who a session's wearer is, when the session says so (``meta.subject``: WEAR's ``sbj_N``,
    or the ``subject`` a recording was made with)."""
    subject = meta.get("subject")
    return str(subject) if subject not in (None, "") else None


@dataclass
class SplitPlan:
    """How the training sessions are split: ``by`` (subject, session or tail), the group of
    each session path and the groups held out for validation."""

    by: str
    groups: dict[str, str] = field(default_factory=dict)
    val_groups: list[str] = field(default_factory=list)
    reason: str = ""

    def split_of(self, path: str) -> str:
        """``val`` or ``train`` for a training session (``tail``: both, see the caller)."""
        return "val" if self.groups.get(path) in self.val_groups else "train"

    def record(self) -> dict:
        """The split as the results JSON and the artifact state it."""
        train = sorted({g for g in self.groups.values() if g not in self.val_groups})
        return {
            "by": self.by,
            "reason": self.reason,
            "val": list(self.val_groups),
            "train": train if self.by != "tail" else [],
        }


def plan_split(
    subjects: dict[str, str | None], split_by: str, fraction: float, seed: int
) -> SplitPlan:
    """The validation groups of the training sessions ``subjects`` (path → subject or None).

    ``round(fraction × groups)`` groups, at least one and at least one left for training, drawn
    with ``seed`` from the sorted groups (so every run and every DDP rank draws the same)."""
    paths = sorted(subjects)
    named = {p: s for p, s in subjects.items() if s is not None}
    if split_by == "subject" and len(named) < len(paths):
        missing = [p for p in paths if p not in named]
        raise InputError(
            f"config data.split_by: subject, but {missing[0]} does not say who its subject is "
            f"({len(missing)} such sessions); set meta.subject or use split_by: session"
        )
    by, reason = split_by, "data.split_by"
    if split_by == "auto":
        n_subjects = len(set(named.values()))
        if len(named) == len(paths) and n_subjects >= 2:
            by, reason = "subject", f"every session names its subject ({n_subjects} subjects)"
        elif len(paths) >= 2:
            by, reason = "session", f"{len(paths)} sessions, not every one names its subject"
        else:
            by, reason = "tail", "one training session: its last part validates"
    if by == "tail":
        return SplitPlan("tail", {p: p for p in paths}, [], reason)
    groups = {p: (named[p] if by == "subject" else p) for p in paths}
    names = sorted(set(groups.values()))
    if len(names) < 2:
        raise InputError(
            f"config data.split_by: {by} needs two or more {by}s to hold one out, found "
            f"{len(names)}; add sessions, a split: val source, or use split_by: tail"
        )
    n_val = min(len(names) - 1, max(1, round(len(names) * fraction)))
    order = np.random.default_rng([seed, 4099]).permutation(len(names))
    val = sorted(names[i] for i in order[:n_val])
    log.info("validation split by %s (%s): %s held out of %d", by, reason, val, len(names))
    return SplitPlan(by, groups, val, reason)


def split_line(record: dict) -> str:
    """One printed line: how the validation split was made (:meth:`SplitPlan.record`)."""
    by = record.get("by", "sources")
    if by == "sources":
        return "split: as the sources name it (train / val / test per source)"
    if by == "tail":
        return f"split: the last part of each training session validates ({record['reason']})"
    val, train = record.get("val", []), record.get("train", [])
    return (
        f"split by {by} ({record['reason']}): validation {', '.join(map(str, val))}; "
        f"training {len(train)} {by}s"
    )
