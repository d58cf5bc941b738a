"""Recognition: live sensors, replay of a recorded session, or the bundled demo.

``evimae-stream`` with no sensors and no ``--replay`` runs the embedded demo: the bundled
synthetic session through the bundled demo model at ``--speed max`` (virtual clock, a progress
bar when stderr is a terminal, deterministic), to the end. Live: ``--camera`` and/or
``--imu-ports``; replay: ``--replay PATH`` with ``--speed 1|N|max``. Predictions go to ``--jsonl``
(schema in :mod:`evimae_stream.runtime.events`), a status line on stderr (latest action, latency
with its running p50/p95/p99, sensor health), and a summary at exit.
"""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from evimae_stream.errors import ArtifactError, InputError

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEMO_MODEL = ASSETS / "demo_model"
DEMO_SESSION = ASSETS / "demo_session"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the main command, in three groups."""
    from evimae_stream.commands.run_options import (
        model_arguments,
        run_arguments,
        source_arguments,
    )

    source_arguments(parser.add_argument_group("sources"))
    model_arguments(parser.add_argument_group("model"))
    run_arguments(parser.add_argument_group("run"))


# ----------------------------------------------------------------------------- arguments


def parse_speed(text: str | None, default: str) -> float | None:
    """``max`` → None (virtual clock); a positive factor → float; else InputError."""
    text = default if text is None else str(text).strip().lower()
    if text == "max":
        return None
    try:
        value = float(text.rstrip("x"))
    except ValueError:
        value = float("nan")
    if not value > 0 or value == float("inf"):
        raise InputError(f"--speed {text!r}: use a positive factor of real time (1, 4) or max")
    return value


def monitor_speed(text: str | None) -> float | None:
    """``--speed`` for the monitor: 1× when not given (the bundled demo too; the command line
    alone runs the demo at max, on a virtual clock, because nobody watches it)."""
    return parse_speed(text, "1")


def load_model(args: argparse.Namespace):
    """(model, ModelMeta, model id) from ``--model`` (artifact directory or official .pth)."""
    from evimae_stream.artifact import file_sha256, load_artifact, model_hash

    path: Path = args.model or DEMO_MODEL
    if args.model is None and not (path / "model.json").is_file():
        raise ArtifactError(
            f"{path}: the bundled demo model is not installed; pass --model DIR (an artifact "
            "made by training or `evimae-stream convert`)"
        )
    if path.is_dir():
        model, meta = load_artifact(path)
        return model, meta, model_hash(path)
    if not path.exists():
        raise ArtifactError(f"--model {path}: no such file or directory")
    if path.suffix not in (".pth", ".pt"):
        raise ArtifactError(f"--model {path}: not a model directory or an official .pth checkpoint")
    from evimae_stream.datasets import PROFILES
    from evimae_stream.model.checkpoint import load_official

    if args.dataset is None:
        raise InputError(
            f"--model {path}: an official checkpoint needs --dataset {'|'.join(PROFILES)}"
        )
    model, meta = load_official(path, args.dataset, Path(args.labels) if args.labels else None)
    return model, meta, f"{file_sha256(path)[:16]}-{args.dataset}"


def check_backend_request(config) -> None:
    """InputError when the requested precision cannot run on this machine (and a warning on
    stderr when it runs but gains nothing, bf16 on a CPU without AMX), checked before any
    model, driver, recorder or replay starts: the backend itself is only chosen on the first
    window (it is verified on real data), which in a live or paced run is in the inference
    thread, seconds in, after the sensors were opened."""
    from evimae_stream.device import check_precision_device, default_device, precision_warning
    from evimae_stream.runtime.backends import check_backend_precision

    device = default_device()
    check_precision_device(config.precision, device)
    check_backend_precision(config.backend, config.precision)
    warning = precision_warning(config.precision, device)
    if warning:
        print(f"warning: {warning}", file=sys.stderr)


def _check_session_fits(session, spec) -> None:
    """InputError unless the session has the streams one of the model's modes needs."""
    has_imu, has_video = bool(session.imu), session.has_video
    usable = {
        "multimodal": has_imu and has_video,
        "imu_only": has_imu,
        "video_only": has_video,
    }
    if not any(usable[m] for m in spec.modes):
        have = ", ".join([*session.imu, *(["video"] if has_video else [])]) or "no streams"
        raise InputError(
            f"{session.path}: the session has {have}, but the model needs "
            f"{' or '.join(spec.modes)} input; use a session with "
            f"{'video' if not has_video else 'IMU data'} or another model"
        )


# ----------------------------------------------------------------------------- run


def run(args: argparse.Namespace) -> int:
    """Run recognition; returns the exit code. The options become typed configs here, once;
    the runtime's composer (:mod:`evimae_stream.runtime.run`) builds and runs the run."""
    from evimae_stream.runtime.config import RuntimeConfig
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.run import LoadedModel, plan_sources

    if args.screenshot is not None and not args.gui:
        raise InputError("--screenshot saves the GUI window; add --gui")
    live = args.camera is not None or args.imu_ports is not None or args.no_camera
    if args.replay is not None and live:
        raise InputError("--replay cannot be combined with --camera/--imu-ports/--no-camera")
    if args.camera is not None and args.no_camera:
        raise InputError("--camera and --no-camera contradict each other; pass one")
    if args.eval and live:
        raise InputError("--eval scores a labelled replay; use it with --replay (or the demo)")
    if args.speed is not None and live:
        raise InputError("--speed applies to --replay only")
    from evimae_stream.commands.labelling import check_labelling

    check_labelling(args, live)
    demo = not live and args.replay is None
    speed = parse_speed(args.speed, "max" if demo else "1") if not live else 1.0
    if args.lsl or args.lsl_sensors:
        from evimae_stream.extras import require_lsl

        require_lsl("--lsl")
        if args.gui:
            raise InputError("--lsl publishes from the command line's run; drop --gui")
        if speed is None:
            raise InputError("--lsl publishes live and paced runs; use --speed 1 or N, not max")
    try:
        config = RuntimeConfig(
            stride_s=args.stride,
            smooth=args.smooth,
            backend=args.backend,
            precision=args.precision,
            cache_dir=args.engine_cache,
            duration_s=args.duration,
            threads=args.threads,
            timed_auto=live or speed is not None,  # --speed max: a choice without timing noise
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    check_backend_request(config)
    if live and args.no_camera and args.imu_ports is None:
        raise InputError("--no-camera needs --imu-ports (there is nothing else to read)")
    model, meta, model_id = load_model(args)
    spec = ModelSpec.from_meta(meta)
    language = None
    if args.vocabulary is not None:
        from evimae_stream.language.scorer import vocabulary_scorer

        if args.lsl:
            raise InputError("--vocabulary with --lsl: the outlets publish the model's classes")
        language = vocabulary_scorer(args.vocabulary, model, meta, str(args.model or DEMO_MODEL))
    plan = None
    if live:
        plan = plan_sources(args.imu_ports, None if args.no_camera else args.camera)
    session_path = None if live else (args.replay if args.replay is not None else DEMO_SESSION)
    head = None
    if args.segments:
        from evimae_stream.commands.run_segments import check_stride, load_head

        head = load_head(args.model or DEMO_MODEL, meta)
        check_stride(head, config.stride_s)
    if args.gui:  # the monitor draws the segments of any model with an interval head
        if args.subject is not None:
            raise InputError("--gui --subject: replay the subject's file, --replay DIR/sbj_N.csv")
        return _launch_gui(args, config, plan, session_path, monitor_speed(args.speed))
    loaded = LoadedModel(
        model, spec, model_id, str(args.model or DEMO_MODEL), meta.variant, language
    )
    if live:
        return _run_live(args, loaded, config, plan, head)
    return _run_replay(args, loaded, config, session_path, speed, demo, head)


def _launch_gui(args, config, plan, session_path: Path | None, speed) -> int:
    """Hand the run to the GUI front end, found through the ``evimae_stream.frontends`` entry
    point (the core never imports ``gui``)."""
    from importlib.metadata import entry_points

    found = [ep for ep in entry_points(group="evimae_stream.frontends") if ep.name == "gui"]
    if not found:
        raise InputError("--gui: the GUI front end is not installed; reinstall evimae-stream")
    model_dir = args.model or DEMO_MODEL
    if not model_dir.is_dir():
        raise InputError(
            f"--gui --model {model_dir}: the GUI runs model directories; convert an official "
            "checkpoint first with `evimae-stream convert`"
        )
    from evimae_stream.commands.labelling import label_names

    launch = found[0].load()
    names = list(label_names(args, ())) if args.labels else None
    labelling = {"labels": names, "record": args.record}
    if args.annotate:
        labelling = {"labels": names, "annotate": True, "prefill": args.model is not None}
    code = launch(
        model_dir,
        config,
        plan,
        session_path,
        speed,
        args.screenshot,
        args.duration,
        **labelling,
        vocabulary=args.vocabulary,
    )
    return int(code)


def _output_config(args, truth: bool = False, progress: bool = False):
    from evimae_stream.runtime.run import OutputConfig

    return OutputConfig(
        jsonl=args.jsonl,
        status_line=not args.quiet and args.jsonl != "-",
        # the bar only on a terminal: in a log file or a pipe it would be \r-separated noise
        progress=progress and not args.quiet and sys.stderr.isatty(),
        truth=truth,
        lsl=args.lsl,
        lsl_sensors=args.lsl_sensors,
    )


def _print_summary(args, summary: dict) -> None:
    from evimae_stream.runtime.sinks import summary_lines

    if not args.quiet:
        for line in summary_lines(summary):
            print(line, file=sys.stderr)
        if "segments" in summary:
            from evimae_stream.commands.run_segments import summary_line

            print(summary_line(summary["segments"]), file=sys.stderr)


def _print_recognised(args, view, session, spec, config) -> None:
    """What the replay recognised (a timeline of the actions) and, for a labelled session, the
    window accuracy: the first thing a newcomer running the demo wants to see."""
    from evimae_stream.recognised import accuracy_lines, timeline_lines
    from evimae_stream.truth import window_truth

    if args.quiet:
        return
    predictions, classes, _ = view
    lines = timeline_lines(predictions, config.stride_s)
    if session.labels:
        truths = [
            window_truth(
                session.labels, p.t_ref_s if p.t_ref_s is not None else p.t_s, spec.window_s
            )
            for p in predictions
        ]
        lines += accuracy_lines(predictions, truths, classes)
    for line in lines:
        print(line, file=sys.stderr)


def _composer(loaded, config, head, keep_s: float | None = None):
    """The run's composer; with an interval head (``--segments``) its segmenter and backend."""
    from evimae_stream.runtime.run import Composer

    if head is None:
        return Composer(loaded, config)
    from evimae_stream.commands.run_segments import segment_hooks

    hooks, backend = segment_hooks(head, loaded, keep_s)
    return Composer(loaded, config, hooks, backend=backend)


def _run_replay(args, loaded, config, path: Path, speed, demo: bool, head=None) -> int:
    from evimae_stream.sessions import open_session

    if demo and not path.exists():
        raise InputError(
            f"{path}: the bundled demo session is not installed; pass --replay PATH or sensors"
        )
    if args.record is not None:
        raise InputError("--record records live sensors; a replay is already a recording")
    session = open_session(path, **_reader_hints(args))
    try:
        _check_session_fits(session, loaded.spec)
        if args.eval and not session.labels:
            raise InputError(f"{path}: --eval needs a labelled session (it has no labels)")
        out = _output_config(args, truth=args.eval, progress=speed is None)
        composer = _composer(loaded, config, head, session.duration_s if args.eval else None)
        result = composer.replay(session, speed, out)
        view = _scored_view(loaded, result.outputs.predictions, session)
        _print_recognised(args, view, session, loaded.spec, config)
        _print_summary(args, result.summary)
        if args.eval:
            _write_eval(
                args, view, session, loaded.spec, config, path, result.summary,
                composer.hooks.segments,
            )  # fmt: skip
    finally:
        session.close()
    return 0


def _scored_view(loaded, predictions, session):
    """(predictions, classes, vocabulary map) to score: with ``--vocabulary`` and a labelled
    session, the predictions restated over the session's labels (each name mapped to one)."""
    if loaded.language is None or not session.labels:
        return predictions, list(loaded.spec.classes), None
    from evimae_stream.language.text import TextCache
    from evimae_stream.language.vocabulary import map_to_labels, relabel

    vocab = loaded.language.vocabulary
    labels = sorted({s.label for s in session.labels})
    mapping = map_to_labels(vocab, labels, TextCache(where="--vocabulary"))
    return relabel(predictions, vocab.names, mapping, labels), labels, mapping


def _reader_hints(args) -> dict:
    """The session reader's options given on the command line (only those given: a reader
    that does not take one names it)."""
    hints: dict = {}
    if args.xdf_map:
        pairs = [item.partition("=") for item in args.xdf_map]
        bad = [a for a, sep, b in pairs if not (sep and a and b)]
        if bad:
            raise InputError(f"--xdf-map {bad[0]}: write PLACEMENT=STREAM, e.g. left_arm=MyIMU")
        hints["xdf_map"] = {a: b for a, _, b in pairs}
    if args.xdf_labels:
        hints["xdf_labels"] = args.xdf_labels
    if args.subject is not None:
        hints["subject"] = args.subject
    return hints


def _write_eval(args, view, session, spec, config, path: Path, summary: dict, seg=None) -> None:
    from evimae_stream.evaluation import draw_timeline, evaluate, table_lines, write_eval
    from evimae_stream.recognised import vocabulary_line

    predictions, classes, mapping = view
    report = evaluate(predictions, session.labels, classes, config.stride_s)
    if mapping is not None:
        report["vocabulary_map"] = mapping
    lane = None
    if seg is not None:
        from evimae_stream.commands.run_segments import lane_segments, segments_section

        report["segments"] = segments_section(seg, predictions, session.labels, config.stride_s)
        lane = lane_segments(report["segments"], seg.open_score)
    report["session"] = str(path)
    report["summary"] = summary
    out_dir = args.eval_out
    if out_dir is None:
        if args.jsonl and args.jsonl != "-":
            out_dir = Path(args.jsonl).resolve().parent
        else:
            out_dir = Path.cwd() / "evimae-eval"
    vocab = report["vocabulary"]
    warning = None
    if unknown := vocab["labels_unknown_to_model"]:
        warning = vocabulary_line(unknown, vocab["overlap"], vocab["model_classes"])
    img = draw_timeline(
        predictions,
        session.labels,
        classes,
        session.duration_s,
        config.stride_s,
        warning=warning,
        segments=lane,
    )
    stem = Path(path).name or "session"
    jpath, ppath = write_eval(out_dir, stem, report, img)
    stream = sys.stderr if args.jsonl == "-" else sys.stdout
    sys.stderr.flush()  # what went to stderr before (timeline, summary) comes out first
    for line in table_lines(report):
        print(line, file=stream)
    if seg is not None:
        from evimae_stream.commands.run_segments import table_lines as segment_lines

        for line in segment_lines(report["segments"]):
            print(line, file=stream)
    print(f"report {jpath}, timeline {ppath}", file=stream, flush=True)


def _run_live(args, loaded, config, plan, head=None) -> int:
    from evimae_stream.commands.labelling import label_names
    from evimae_stream.runtime.labelling import LabelSetup

    meta = {"recorded_by": "evimae-stream", "model_classes": list(loaded.spec.classes)}
    meta["rig"] = plan.source  # the sensors as given: what a model trained on it runs with
    labels = None
    if args.label_keys or args.labels:
        names = label_names(args, loaded.spec.classes)
        meta["label_names"] = list(names)
        keys = None
        if args.label_keys:
            from evimae_stream.commands.labelling import terminal_keys

            keys = terminal_keys
        labels = LabelSetup(names, keys)
    composer = _composer(loaded, config, head)
    result = composer.live(plan, _output_config(args), args.record, meta, labels)
    _print_summary(args, result.summary)
    if args.record is not None and not args.quiet:
        print(f"recorded {args.record}", file=sys.stderr)
    return 0
