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
import time
from pathlib import Path

from evimae_stream.errors import ArtifactError, DeviceError, InputError

log = logging.getLogger(__name__)

ASSETS = Path(__file__).resolve().parents[1] / "assets"
DEMO_MODEL = ASSETS / "demo_model"
DEMO_SESSION = ASSETS / "demo_session"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of the main command."""
    from drivers.protocols import PROTOCOLS
    from evimae_stream.datasets import PROFILES
    from evimae_stream.runtime.backends import PRECISIONS, backend_choices

    src = parser.add_argument_group("sources")
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
        "--speed",
        default=None,
        metavar="1|N|max",
        help="replay speed: a factor of real time, or max (virtual clock, deterministic; "
        "default: 1 for --replay, max for the demo)",
    )
    mdl = parser.add_argument_group("model")
    mdl.add_argument(
        "--model", type=Path, metavar="DIR|official.pth", help="model artifact (default: demo)"
    )
    mdl.add_argument("--dataset", choices=tuple(PROFILES), help="for an official .pth: its dataset")
    mdl.add_argument("--labels", type=Path, metavar="CSV", help="class_labels_indices.csv")
    mdl.add_argument("--backend", default="auto", choices=backend_choices())
    mdl.add_argument("--precision", choices=PRECISIONS, default=None)
    mdl.add_argument(
        "--engine-cache", type=Path, metavar="DIR", help="compiled-engine cache directory"
    )
    run = parser.add_argument_group("run")
    run.add_argument("--stride", type=float, default=0.5, help="seconds between windows")
    run.add_argument("--duration", type=float, help="stop after this many seconds")
    run.add_argument("--smooth", type=int, default=1, metavar="N", help="average N predictions")
    run.add_argument("--record", type=Path, metavar="DIR", help="record the sensors to DIR")
    run.add_argument("--jsonl", metavar="FILE|-", help="write prediction events as JSON Lines")
    run.add_argument("--eval", action="store_true", help="score a labelled replay")
    run.add_argument("--eval-out", type=Path, metavar="DIR", help="where --eval writes")
    run.add_argument("--gui", action="store_true", help="show the GUI")
    run.add_argument(
        "--screenshot", type=Path, metavar="PNG", help="with --gui: save the window, then exit"
    )
    run.add_argument("--quiet", action="store_true", help="no status line, no summary")


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
    model, meta = load_official(path, args.dataset, args.labels)
    return model, meta, f"{file_sha256(path)[:16]}-{args.dataset}"


def check_backend_request(config) -> None:
    """InputError when the requested precision cannot run on this machine, checked before any
    model, driver, recorder or replay starts: the backend itself is only chosen on the first
    window (it is verified on real data), which in a live or paced run is in the inference
    thread, seconds in, after the sensors were opened."""
    from evimae_stream.device import check_precision_device, default_device

    check_precision_device(config.precision, default_device())


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
    """Run recognition; returns the exit code."""
    from evimae_stream.runtime.inputs import ModelSpec
    from evimae_stream.runtime.pipeline import RuntimeConfig

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
    demo = not live and args.replay is None
    speed = parse_speed(args.speed, "max" if demo else "1") if not live else 1.0
    try:
        config = RuntimeConfig(
            stride_s=args.stride,
            smooth=args.smooth,
            backend=args.backend,
            precision=args.precision,
            cache_dir=args.engine_cache,
            duration_s=args.duration,
            timed_auto=live or speed is not None,  # --speed max: a choice without timing noise
        )
    except ValueError as exc:
        raise InputError(str(exc)) from None
    check_backend_request(config)
    if live and args.no_camera and args.imu_ports is None:
        raise InputError("--no-camera needs --imu-ports (there is nothing else to read)")
    model, meta, model_id = load_model(args)
    spec = ModelSpec.from_meta(meta, model)
    if args.gui:
        return _launch_gui(args, spec, config, live, speed)
    about = {"model": str(args.model or DEMO_MODEL), "variant": meta.variant}
    if live:
        return _run_live(args, model, spec, config, model_id, about)
    session_path = args.replay if args.replay is not None else DEMO_SESSION
    return _run_replay(args, model, spec, config, model_id, session_path, speed, demo, about)


def _launch_gui(args, spec, config, live: bool, speed) -> int:
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
    session = None if live else (args.replay or DEMO_SESSION)
    return int(found[0].load()(args, model_dir, spec, config, session, speed))


def _outputs(args, timings: bool, truth_fn, progress_bar: bool):
    from evimae_stream.runtime.pipeline import Outputs
    from evimae_stream.runtime.sinks import JsonlSink, TerminalLine

    sinks: list = []
    jsonl = None
    if args.jsonl:
        jsonl = JsonlSink(args.jsonl, timings=timings, truth=truth_fn is not None)
        sinks.append(jsonl)
    status = None
    if not args.quiet and args.jsonl != "-" and not progress_bar:
        status = TerminalLine()
        sinks.append(status)
    return Outputs(sinks, timings=timings, truth=truth_fn), jsonl, status


def _start_event(spec, config, source: str, about: dict) -> dict:
    """The first JSONL event (schema in :mod:`evimae_stream.runtime.events`); ``about``: the
    model's path as given and its variant."""
    return {
        "type": "start",
        "model": about["model"],
        "variant": about["variant"],
        "classes": list(spec.classes),
        "modes": list(spec.modes),
        "stride_s": config.stride_s,
        "window_s": spec.window_s,
        "source": source,
    }


def _finish(args, outputs, jsonl, status, backend, streams, extra: dict | None = None) -> dict:
    from evimae_stream.runtime.sinks import summary_lines

    if status is not None:
        status.close()
    summary = outputs.summary(backend, streams)
    if jsonl is not None:
        jsonl.write(
            {
                "type": "end",
                "windows": summary["windows"],
                "predicted": summary["predicted"],
                "skipped": summary["skipped"],
            }
        )
        jsonl.close()
    if not args.quiet:
        for line in summary_lines(summary):
            print(line, file=sys.stderr)
        for line in (extra or {}).get("lines", []):
            print(line, file=sys.stderr)
    return summary


def _run_replay(
    args, model, spec, config, model_id, path: Path, speed, demo: bool, about: dict
) -> int:
    from drivers.replay import ReplayDriver
    from evimae_stream.clock import ScaledClock, VirtualClock
    from evimae_stream.evaluation import window_truth
    from evimae_stream.runtime.pipeline import (
        LiveRun,
        Recognizer,
        make_rig,
        replay_session_max,
        stream_summary,
    )
    from evimae_stream.sessions import open_session

    if demo and not path.exists():
        raise InputError(
            f"{path}: the bundled demo session is not installed; pass --replay PATH or sensors"
        )
    if args.record is not None:
        raise InputError("--record records live sensors; a replay is already a recording")
    session = open_session(path)
    try:
        _check_session_fits(session, spec)
        if args.eval and not session.labels:
            raise InputError(f"{path}: --eval needs a labelled session (it has no labels)")
        truth_fn = None
        if args.eval:

            def truth_fn(pred):
                t_end = pred.t_ref_s if pred.t_ref_s is not None else pred.t_s
                return window_truth(session.labels, t_end, spec.window_s)

        recognizer = Recognizer(model, spec, config, model_id)
        end_s = session.duration_s
        if config.duration_s is not None:
            end_s = min(end_s, config.duration_s)
        if speed is None:
            outputs, jsonl, status = _outputs(args, False, truth_fn, progress_bar=True)
            if jsonl is not None:
                jsonl.write(_start_event(spec, config, str(path), about))
            # the bar only on a terminal: in a log file or a pipe it would be \r-separated noise
            buffer = replay_session_max(
                session, recognizer, outputs, end_s, stale_after_s=config.stale_after_s,
                progress=not args.quiet and sys.stderr.isatty(),
            )  # fmt: skip
            drivers = {}
        else:
            # session time runs `speed`× faster than the wall: stamps, windows and the model see
            # the data at its real rate; latency is reported in wall milliseconds
            clock = ScaledClock(speed)
            tick_clock = VirtualClock()
            rates = {p: s.rate_hz for p, s in session.imu.items()}
            fps = session.video.fps if session.has_video else None
            buffer, gates = make_rig(
                spec, rates, fps, tick_clock, stale_after_s=config.stale_after_s
            )
            origin = clock()
            driver = ReplayDriver(session, gates.imu, gates.camera, speed=1.0, clock=clock)
            outputs, jsonl, status = _outputs(args, True, truth_fn, progress_bar=False)
            outputs.time_scale = speed
            if jsonl is not None:
                jsonl.write(_start_event(spec, config, str(path), about))
            live = LiveRun(
                buffer, gates, tick_clock, recognizer, outputs, origin, host_clock=clock,
                status=status, speed=speed,
            )  # fmt: skip
            driver.start()
            ended_at: list[float] = []

            def stop_when() -> bool:
                now = time.monotonic()
                if (clock() - origin) / 1e9 >= end_s:
                    return True
                if not driver.running:
                    ended_at.append(now)
                    return now - ended_at[0] > 2 * config.stride_s
                return False

            try:
                live.run(stop_when)
            finally:
                driver.stop()
            drivers = {}
        summary = _finish(
            args, outputs, jsonl, status, recognizer.backend, stream_summary(buffer, drivers)
        )
        if args.eval:
            _write_eval(args, outputs, session, spec, config, path, summary)
    finally:
        session.close()
    return 0


def _write_eval(args, outputs, session, spec, config, path: Path, summary: dict) -> None:
    from evimae_stream.evaluation import draw_timeline, evaluate, table_lines, write_eval

    report = evaluate(outputs.predictions, session.labels, spec.classes, config.stride_s)
    report["session"] = str(path)
    report["summary"] = summary
    out_dir = args.eval_out
    if out_dir is None:
        if args.jsonl and args.jsonl != "-":
            out_dir = Path(args.jsonl).resolve().parent
        else:
            out_dir = Path.cwd() / "evimae-eval"
    img = draw_timeline(
        outputs.predictions, session.labels, spec.classes, session.duration_s, config.stride_s
    )
    stem = Path(path).name or "session"
    jpath, ppath = write_eval(out_dir, stem, report, img)
    stream = sys.stderr if args.jsonl == "-" else sys.stdout
    for line in table_lines(report):
        print(line, file=stream)
    print(f"report {jpath}, timeline {ppath}", file=stream)


def plan_live(args, spec):
    """What a live run reads: ``(imu configs by placement, camera source or None, IMU rates,
    camera fps or None)`` from ``--imu-ports`` / ``--camera`` (InputError on bad ones)."""
    from drivers.camera import parse_camera_source
    from drivers.uri import parse_imu_ports

    imu_cfgs = parse_imu_ports(args.imu_ports) if args.imu_ports else {}
    camera_src = None
    if args.camera is not None and not args.no_camera:
        camera_src = args.camera.strip()
        if camera_src.lower() != "synthetic":
            camera_src = parse_camera_source(camera_src)
    rates = {}
    for p, c in imu_cfgs.items():
        rate = getattr(c, "rate_hz", None)
        rates[p] = float(rate) if rate else spec.imu_rate_hz
    camera_fps = 30.0 if camera_src is not None else None
    return imu_cfgs, camera_src, rates, camera_fps


def make_live_drivers(imu_cfgs, camera_src, imu_sinks, frame_sink) -> dict:
    """The (not started) drivers of a live rig, keyed by stream name, feeding the given sinks."""
    from drivers.camera import CameraConfig, CameraDriver
    from drivers.config import SyntheticImuConfig
    from drivers.factory import make_imu_driver

    drivers: dict = {p: make_imu_driver(c, imu_sinks[p]) for p, c in imu_cfgs.items()}
    if camera_src is not None:
        if camera_src == "synthetic":
            from drivers.synthetic import SyntheticCameraDriver

            seeds = [c.seed for c in imu_cfgs.values() if isinstance(c, SyntheticImuConfig)]
            drivers["camera"] = SyntheticCameraDriver(frame_sink, seed=seeds[0] if seeds else 0)
        else:
            drivers["camera"] = CameraDriver(CameraConfig(camera_src, fourcc="MJPG"), frame_sink)
    return drivers


def _run_live(args, model, spec, config, model_id, about: dict) -> int:
    from drivers.config import SerialImuConfig
    from drivers.serial_imu import check_port_free
    from evimae_stream.clock import VirtualClock
    from evimae_stream.runtime.pipeline import LiveRun, Recognizer, make_rig, stream_summary
    from evimae_stream.runtime.recorder import Recorder

    imu_cfgs, camera_src, rates, camera_fps = plan_live(args, spec)
    origin = time.monotonic_ns()
    tick_clock = VirtualClock(origin)
    recorder = None
    if args.record is not None:
        if (args.record / "session.json").exists():
            raise InputError(f"--record {args.record}: already holds a session; choose a new DIR")
        recorder = Recorder(
            args.record,
            origin,
            rates,
            {p: getattr(c, "uri", "") or str(c) for p, c in imu_cfgs.items()},
            None if camera_src is None else (camera_fps, str(camera_src)),
            meta={"recorded_by": "evimae-stream", "model_classes": list(spec.classes)},
        )
    buffer, gates = make_rig(
        spec, rates, camera_fps, tick_clock, recorder, stale_after_s=config.stale_after_s
    )
    drivers = make_live_drivers(imu_cfgs, camera_src, gates.imu, gates.camera)
    try:
        for c in imu_cfgs.values():
            if isinstance(c, SerialImuConfig) and sys.platform != "win32":
                check_port_free(c.port)
        for d in drivers.values():
            d.connect()  # a bad port, busy device or missing camera fails here, one line
        cam = drivers.get("camera")
        if cam is not None:
            # the camera's own rate once open (files and devices differ); the synthetic one: 30
            fps = float(getattr(cam, "source_fps", None) or camera_fps)
            buffer.camera.nominal_rate_hz = fps
            if recorder is not None and recorder.camera is not None:
                recorder.camera = (fps, recorder.camera[1])
        recognizer = Recognizer(model, spec, config, model_id)
        outputs, jsonl, status = _outputs(args, True, None, progress_bar=False)
        if jsonl is not None:
            source = " ".join(
                [
                    *(args.imu_ports or []),
                    *([f"camera={camera_src}"] if camera_src is not None else []),
                ]
            )
            jsonl.write(_start_event(spec, config, source, about))
        live = LiveRun(buffer, gates, tick_clock, recognizer, outputs, origin, status=status)
        for d in drivers.values():
            d.start()

        def stop_when() -> bool:
            if config.duration_s is not None:
                return (time.monotonic_ns() - origin) / 1e9 >= config.duration_s
            return not any(d.running for d in drivers.values())

        try:
            live.run(stop_when)
        except KeyboardInterrupt:  # the usual way to end a live run: stop cleanly, summarise
            log.info("stopped by the user")
        finally:
            for d in drivers.values():
                d.stop()
            gates.release(None)  # what arrived after the last tick still goes to the recording
            if recorder is not None:
                recorder.close()
    except DeviceError:
        for d in drivers.values():
            d.stop()
        if recorder is not None:
            recorder.close()
        raise
    _finish(args, outputs, jsonl, status, recognizer.backend, stream_summary(buffer, drivers))
    if recorder is not None and not args.quiet:
        print(f"recorded {args.record}", file=sys.stderr)
    return 0
