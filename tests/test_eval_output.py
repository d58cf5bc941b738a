"""Issue 16: what ``--eval`` and the monitor say and draw — a model scored on labels it does not
know (item 5), the timeline PNG's axis, legend and colours (item 10)."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from evimae_stream.colours import to_bgr
from evimae_stream.evaluation import draw_timeline
from evimae_stream.runtime.events import Prediction
from evimae_stream.types import Segment
from tests.helpers.cli import cli
from tests.helpers.paths import REPO

DEMO_SESSION = REPO / "evimae_stream" / "assets" / "demo_session"
CLASSES = ["chopping", "idle", "jogging", "stirring"]
_NS = 1_000_000_000


def _renamed_session(tmp_path: Path) -> tuple[Path, list[str]]:
    """The demo session with every label renamed (``wear_<label>``): a vocabulary the bundled
    demo model does not know."""
    session = tmp_path / "renamed"
    shutil.copytree(DEMO_SESSION, session)
    rows = list(csv.reader((session / "labels.csv").open()))
    renamed = [rows[0]] + [[a, b, f"wear_{label}"] for a, b, label in rows[1:]]
    with (session / "labels.csv").open("w", newline="") as fh:
        csv.writer(fh).writerows(renamed)
    return session, sorted({r[2] for r in renamed[1:]})


def _warning_pixels(img: np.ndarray, rows: slice) -> int:
    """Pixels of the warning's dark red in ``rows`` (text is anti-aliased: a colour range)."""
    b, g, r = (img[rows, :, k].astype(int) for k in range(3))
    return int(((r > 140) & (g < 110) & (b < 110)).sum())


def test_eval_of_a_model_on_labels_it_does_not_know_says_the_vocabularies_do_not_overlap(
    tmp_path: Path,
) -> None:
    """Item 5: the demo model (9 synthetic classes) scored on a session of other labels: the
    printed table, the eval JSON and the timeline PNG say the vocabularies do not overlap and
    name the labels unknown to the model."""
    import cv2

    session, unknown = _renamed_session(tmp_path)
    out = tmp_path / "eval"
    res = cli("--replay", session, "--speed", "max", "--eval", "--eval-out", out)
    assert res.returncode == 0, res.stderr
    (line,) = [x for x in res.stdout.splitlines() if "do not overlap" in x]
    assert line.startswith("warning: the model's classes and the session's labels do not overlap")
    assert f"does not know {', '.join(unknown)};" in line
    report = json.loads((out / "renamed.eval.json").read_text())
    assert report["accuracy"] == 0.0
    assert report["vocabulary"] == {
        "overlap": False,
        "labels_unknown_to_model": unknown,
        "model_classes": 9,
    }
    img = cv2.imread(str(out / "renamed.timeline.png"))
    assert _warning_pixels(img, slice(0, 30)) > 200  # the warning over the lanes


def test_eval_of_a_model_on_its_own_labels_has_no_vocabulary_warning() -> None:
    """Item 5, the other side: labels the model knows draw no warning."""
    labels = [Segment(0.0, 5.0, "idle"), Segment(5.0, 10.0, "stirring")]
    img = draw_timeline([], labels, CLASSES, 10.0, 0.5)
    assert _warning_pixels(img, slice(0, img.shape[0])) == 0


def _pred(t_s: float, label: str | None) -> Prediction:
    return Prediction(index=round(t_s * 2), tick_ns=round(t_s * _NS), origin_ns=0,
                      t_ref_ns=round(t_s * _NS), label=label)  # fmt: skip


def test_timeline_png_keeps_its_last_axis_label_inside_the_image() -> None:
    """Item 10: a 100 s timeline's last tick label ("100s", at the right end of the lanes) is
    drawn whole: no dark pixel touches the image's right edge."""
    img = draw_timeline([], [Segment(0.0, 100.0, "idle")], CLASSES, 100.0, 0.5)
    dark = img.min(axis=2) < 128
    axis_rows = slice(2 * 50 + 30, 2 * 50 + 30 + 30)  # under the two lanes
    cols = np.nonzero(dark[axis_rows].any(axis=0))[0]
    assert cols.max() < img.shape[1] - 1
    assert cols.max() > img.shape[1] - 40  # the last label is there, near the edge


def test_timeline_png_legend_shows_no_prediction_and_colours_classes_as_the_monitor(qtbot) -> None:
    """Item 10: the PNG's legend has "no prediction" (the empty lane's grey), and each class has
    the colour the monitor's timeline gives it."""
    from gui.timeline import Timeline

    labels = [Segment(0.0, 10.0, "chopping"), Segment(10.0, 20.0, "stirring")]
    preds = [_pred(t, "jogging") for t in np.arange(0.5, 10.01, 0.5)]
    img = draw_timeline(preds, labels, CLASSES, 20.0, 0.5)
    widget = Timeline()
    qtbot.addWidget(widget)
    widget.set_classes(CLASSES)
    x_of = lambda t: 110 + round(t * (img.shape[1] - 130) / 20.0)  # noqa: E731
    truth_y, pred_y = 30 + 20, 30 + 50 + 20
    assert tuple(img[truth_y, x_of(5.0)]) == to_bgr(widget.colour("chopping"))
    assert tuple(img[truth_y, x_of(15.0)]) == to_bgr(widget.colour("stirring"))
    assert tuple(img[pred_y, x_of(5.0)]) == to_bgr(widget.colour("jogging"))
    empty = tuple(img[pred_y, x_of(15.0)])  # no prediction there
    legend = img[2 * 50 + 30 + 30 :]
    assert (legend == np.array(empty, np.uint8)).all(axis=2).sum() >= 15 * 13  # its swatch


@pytest.mark.gui
def test_gui_timeline_says_when_the_session_labels_are_unknown_to_the_model(qtbot) -> None:
    """Item 5: the monitor's timeline says the vocabularies do not overlap and names the
    labels the model does not know; it says nothing when they overlap."""
    from gui.timeline import Timeline

    widget = Timeline()
    qtbot.addWidget(widget)
    widget.set_classes(CLASSES)
    widget.set_truth([Segment(0.0, 5.0, "sawing"), Segment(5.0, 9.0, "drilling")])
    assert widget.vocabulary.isVisibleTo(widget)
    text = widget.vocabulary.text()
    assert "do not overlap" in text and "does not know drilling, sawing" in text
    widget.set_truth([Segment(0.0, 5.0, "idle"), Segment(5.0, 9.0, "sawing")])
    assert "1 of the session's labels are not among the model's classes" in widget.vocabulary.text()
    widget.set_truth([Segment(0.0, 5.0, "idle")])
    assert not widget.vocabulary.isVisibleTo(widget)


def test_readme_demo_session_accuracy_is_what_eval_scores(tmp_path: Path) -> None:
    """Item 8: the README's --eval figure for the bundled demo session (accuracy over its scored
    windows) is what ``--eval`` prints for that session today."""
    import re

    text = " ".join((REPO / "README.md").read_text().split())
    m = re.search(
        r"--eval` scores the runtime's own windows.*?: (0\.\d{3}) over its (\d+) scored", text
    )
    assert m, "the README's --eval figure for the demo session"
    res = cli(
        "--replay", DEMO_SESSION, "--speed", "max", "--eval", "--eval-out", tmp_path, "--quiet"
    )
    assert res.returncode == 0, res.stderr
    report = json.loads((tmp_path / "demo_session.eval.json").read_text())
    assert f"{report['accuracy']:.3f}" == m.group(1)
    assert report["scored_windows"] == int(m.group(2))
