"""Camera driver on real video files (cv2.VideoWriter) and a real HTTP video source."""

from __future__ import annotations

import functools
import http.server
import itertools
import threading
from pathlib import Path

import cv2
import numpy as np
import pytest

from drivers.base import LinkState
from drivers.camera import CameraConfig, CameraDriver, parse_camera_source, source_kind
from drivers.config import BackoffConfig
from evimae_stream.errors import DeviceError, InputError
from tests.helpers.recording_sink import RecordingSink, wait_for

FAST = BackoffConfig(initial_s=0.05, max_s=0.3)
W, H = 64, 48


def write_video(path: Path, frames: int, fps: float) -> Path:
    """Frame i is uniform BGR (8·i, 100, 200): blue tells its index, R/G the channel order."""
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (W, H))
    assert writer.isOpened()
    for i in range(frames):
        frame = np.empty((H, W, 3), np.uint8)
        frame[:] = (8 * i, 100, 200)
        writer.write(frame)
    writer.release()
    return path


def frame_index(rgb: np.ndarray) -> int:
    return round(float(rgb[..., 2].mean()) / 8)


@pytest.fixture
def http_dir(tmp_path):
    """A real HTTP server on localhost serving tmp_path (an IP camera stand-in that can die)."""

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, *args):
            pass

    state: dict = {}

    def start(port: int = 0):
        handler = functools.partial(Quiet, directory=str(tmp_path))
        server = http.server.ThreadingHTTPServer(("127.0.0.1", port), handler)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        state["server"] = server
        return server.server_address[1]

    def stop():
        server = state.pop("server", None)
        if server is not None:
            server.shutdown()
            server.server_close()

    yield start, stop
    stop()


def test_file_plays_at_native_fps_in_order_as_rgb_then_ends(tmp_path):
    path = write_video(tmp_path / "head.avi", frames=24, fps=30)
    sink = RecordingSink()
    drv = CameraDriver(CameraConfig(source=str(path), backoff=FAST), sink)
    drv.connect()
    assert drv.frame_size == (W, H) and drv.source_fps == pytest.approx(30)
    drv.start()
    drv.join(5.0)
    assert drv.state is LinkState.ENDED and not drv.running
    assert [frame_index(f) for _, f in sink.frames] == list(range(24))
    first = sink.frames[0][1]
    assert first.shape == (H, W, 3) and first.dtype == np.uint8
    np.testing.assert_allclose(first[..., :2].mean(axis=(0, 1)), (200, 100), atol=6)  # R, G
    dt = np.diff([t for t, _ in sink.frames]) / 1e9
    assert 0.5 / 30 < np.median(dt) < 2.0 / 30  # paced by the file's fps, not as fast as decoded
    assert sink.kinds() == ["up", "down"] and "end of video file" in sink.events[-1][1]
    assert drv.stats.samples == 24


def test_file_loops_when_asked(tmp_path):
    path = write_video(tmp_path / "loop.avi", frames=10, fps=50)
    sink = RecordingSink()
    drv = CameraDriver(CameraConfig(source=str(path), loop=True, realtime=False), sink)
    drv.start()
    assert wait_for(lambda: sink.frame_count >= 25, 5.0)
    drv.stop()
    order = [frame_index(f) for _, f in sink.frames[:25]]
    assert order == [i % 10 for i in range(25)]
    assert sink.kinds() == ["up"] and drv.state is LinkState.STOPPED


def test_missing_file_is_down_with_backoff_until_it_appears(tmp_path):
    path = tmp_path / "later.avi"
    sink = RecordingSink()
    drv = CameraDriver(CameraConfig(source=str(path), backoff=FAST), sink)
    with pytest.raises(DeviceError, match=r"later\.avi") as info:
        drv.connect()
    assert "\n" not in str(info.value)
    drv.start()
    assert wait_for(lambda: drv.state is LinkState.DOWN, 3.0)
    write_video(tmp_path / "tmp.avi", frames=5, fps=50).rename(path)
    drv.join(5.0)
    assert sink.kinds() == ["down", "up", "down"]
    assert sink.frame_count == 5 and drv.stats.reconnects == 1


def test_network_source_read_failure_reopens_and_survives_server_outage(tmp_path, http_dir):
    start, stop = http_dir
    write_video(tmp_path / "cam.avi", frames=20, fps=50)
    port = start()
    sink = RecordingSink(keep_frames=False)
    drv = CameraDriver(CameraConfig(source=f"http://127.0.0.1:{port}/cam.avi", backoff=FAST), sink)
    assert drv.kind == "url"
    drv.start()
    # the stream ends after 20 frames: for a network camera that is a read failure -> reopen
    assert wait_for(lambda: drv.stats.reconnects >= 1 and sink.frame_count >= 40, 5.0)
    stop()
    assert wait_for(lambda: drv.state is LinkState.DOWN, 3.0)
    n = sink.frame_count
    assert "grab() failed" in (drv.stats.last_error or "") or "cannot open" in (
        drv.stats.last_error or ""
    )
    start(port)
    assert wait_for(lambda: sink.frame_count > n + 20, 5.0)
    drv.stop()
    assert not drv.running
    kinds = sink.kinds()
    assert kinds[0] == "up" and kinds.count("down") >= 2
    # strictly alternating: one down per outage, one up per recovery
    assert all(a != b for a, b in itertools.pairwise(kinds))


@pytest.mark.parametrize(
    ("text", "source", "kind"),
    [
        ("0", 0, "device"),
        ("2", 2, "device"),
        ("/dev/video1", "/dev/video1", "device"),
        ("rtsp://cam.local/stream", "rtsp://cam.local/stream", "url"),
        ("session/video.mp4", "session/video.mp4", "file"),
    ],
)
def test_camera_source_parsing(text, source, kind):
    assert parse_camera_source(text) == source
    assert source_kind(parse_camera_source(text)) == kind


def test_camera_config_validation():
    with pytest.raises(InputError, match="FOURCC"):
        CameraConfig(source=0, fourcc="MJPEG")
    with pytest.raises(InputError, match="width"):
        CameraConfig(source=0, width=0)
    with pytest.raises(InputError, match="index"):
        CameraConfig(source=-1)
