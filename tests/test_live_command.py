"""train.py's last line: the command that runs the new artifact on the sensors the sessions
were recorded with (their ``meta.rig``), quoted for a shell."""

from __future__ import annotations

import json
import shlex

from training.live_command import PLACEHOLDER, live_command, recorded_rig


def _session(path, rig):
    path.mkdir(parents=True)
    meta = {"recorded_by": "evimae-stream"} | ({"rig": rig} if rig else {})
    (path / "session.json").write_text(json.dumps({"meta": meta}))
    return path


def test_the_command_runs_the_recorded_rig(tmp_path):
    _session(tmp_path / "sessions" / "a", None)  # a session without a rig is passed over
    _session(tmp_path / "sessions" / "b", "left_arm=/dev/ttyUSB0 right_arm=ble:C1:D2 camera=0")
    rig = recorded_rig([tmp_path / "sessions"])
    assert rig == "left_arm=/dev/ttyUSB0 right_arm=ble:C1:D2 camera=0"
    art = tmp_path / "my model"
    cmd = live_command(art, ["imu_only"], rig)
    imus = ["left_arm=/dev/ttyUSB0", "right_arm=ble:C1:D2"]
    assert shlex.split(cmd) == ["evimae-stream", "--model", str(art), "--imu-ports", *imus,
                                "--no-camera"]  # fmt: skip
    cmd = live_command(art, ["multimodal", "imu_only"], rig)
    assert shlex.split(cmd)[-2:] == ["--camera", "0"]


def test_quoting_and_the_placeholder_without_a_rig(tmp_path):
    cmd = live_command("runs/m", ["imu_only"], "synthetic?seed=3 synthetic?seed=3")
    want = "evimae-stream --model runs/m --imu-ports 'synthetic?seed=3' 'synthetic?seed=3'"
    assert cmd == want + " --no-camera"
    assert recorded_rig([tmp_path / "missing"]) is None
    assert live_command("runs/m", ["imu_only"], None) == (
        f"evimae-stream --model runs/m --imu-ports {PLACEHOLDER} --no-camera"
    )
