"""The main command's options, in three groups: where the data comes from (sources), which
model runs and how (model), and what a run does with its predictions (run). ``run.py`` adds them
to its parser and acts on them."""

from __future__ import annotations

from pathlib import Path


def source_arguments(src) -> None:
    """Where the data comes from: sensors, or a session to replay and how fast."""
    from drivers.protocols import PROTOCOLS

    src.add_argument(
        "--camera", metavar="IDX|PATH|URL|synthetic", help="head camera: index, device, file, URL"
    )
    src.add_argument("--no-camera", action="store_true", help="run without a camera (IMU-only)")
    src.add_argument(
        "--imu-ports",
        nargs="+",
        metavar="PLACEMENT=URI",
        help="up to four IMUs: /dev/ttyUSB0, "
        f"serial:PATH?protocol={PROTOCOLS['serial'].choices()}, "
        f"ble:ADDR?protocol={PROTOCOLS['ble'].choices()}, "
        "synthetic (bare URIs go to left_arm, right_arm, left_leg, right_leg)",
    )
    src.add_argument("--replay", type=Path, metavar="PATH", help="a recorded session to replay")
    src.add_argument(
        "--subject",
        metavar="N",
        help="--replay of a directory of WEAR subjects: which one (N of sbj_N.csv)",
    )
    src.add_argument(
        "--xdf-map",
        nargs="+",
        metavar="PLACEMENT=STREAM",
        help="--replay FILE.xdf: which IMU stream (name, type or source_id) is which placement",
    )
    src.add_argument(
        "--xdf-labels", metavar="STREAM", help="--replay FILE.xdf: a marker stream as the labels"
    )
    src.add_argument(
        "--speed",
        default=None,
        metavar="1|N|max",
        help="replay speed: a factor of real time, or max (virtual clock, deterministic; "
        "default: 1 for --replay, max for the demo)",
    )


def model_arguments(mdl) -> None:
    """Which model, and how it runs."""
    from evimae_stream.datasets import PROFILES
    from evimae_stream.runtime.backends import PRECISIONS, backend_choices

    mdl.add_argument(
        "--model", type=Path, metavar="DIR|official.pth", help="model artifact (default: demo)"
    )
    mdl.add_argument("--dataset", choices=tuple(PROFILES), help="for an official .pth: its dataset")
    mdl.add_argument(
        "--labels",
        metavar="FILE|a,b,c",
        help="the action names to label with (--label-keys, the monitor's label bar; default: "
        "the model's classes): a file of names or a,b,c; for an official .pth its "
        "class_labels_indices.csv",
    )
    mdl.add_argument(
        "--backend",
        default="auto",
        choices=backend_choices(),
        help="how the model runs: auto (default) tries each one this machine has and keeps the "
        "fastest that matches eager; eager is plain PyTorch",
    )
    mdl.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=None,
        help="number format of the forward: fp32 (the reference); bf16 pays off on CPUs with "
        "native bf16 (AVX512-BF16, AMX) or on GPUs; fp16 needs a CUDA GPU; int8 (CPU): int8 "
        "transformer GEMMs, faster than fp32 for large models such as evimae_small (default: "
        "the backend's choice)",
    )
    mdl.add_argument(
        "--threads",
        type=int,
        metavar="N",
        help="torch threads for the forward (default: chosen per model: 1 for small models, "
        "next to the drivers; every core for evimae_small)",
    )
    mdl.add_argument(
        "--engine-cache", type=Path, metavar="DIR", help="compiled-engine cache directory"
    )
    mdl.add_argument(
        "--vocabulary",
        metavar='"A; B; C"|FILE',
        help="a language-aligned model recognises these prompts instead of its classes: "
        "'stirring a pot; walking', or a file with one a line (NAME = prompt | prompt, "
        "'template: a person {}'); needs the [text] extra",
    )


def run_arguments(run) -> None:
    """How the run goes and where its outputs go."""
    run.add_argument("--stride", type=float, default=0.5, help="seconds between windows")
    run.add_argument(
        "--duration",
        type=float,
        help="stop after this many seconds (of the session for a replay, whatever its --speed)",
    )
    run.add_argument("--smooth", type=int, default=1, metavar="N", help="average N predictions")
    run.add_argument("--record", type=Path, metavar="DIR", help="record the sensors to DIR")
    run.add_argument(
        "--label-keys",
        action="store_true",
        help="label a live run from the terminal: keys 1-9 start/end the --labels actions, 0 ends",
    )
    run.add_argument(
        "--annotate",
        action="store_true",
        help="with --gui --replay SESSION: review and correct the session's labels",
    )
    run.add_argument("--jsonl", metavar="FILE|-", help="write prediction events as JSON Lines")
    run.add_argument(
        "--lsl", action="store_true", help="publish the predictions as LSL streams (live, paced)"
    )
    run.add_argument(
        "--lsl-sensors",
        action="store_true",
        help="publish the aligned IMUs and the camera's frame times as LSL streams",
    )
    run.add_argument(
        "--segments",
        action="store_true",
        help="action segments from the model's interval head, every stride (JSONL 'segment' "
        "events; with --eval: segment mAP against the merged windows)",
    )
    run.add_argument("--eval", action="store_true", help="score a labelled replay")
    run.add_argument("--eval-out", type=Path, metavar="DIR", help="where --eval writes")
    run.add_argument("--gui", action="store_true", help="show the GUI")
    run.add_argument(
        "--screenshot", type=Path, metavar="PNG", help="with --gui: save the window, then exit"
    )
    run.add_argument("--quiet", action="store_true", help="no status line, no summary")
