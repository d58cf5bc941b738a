"""XDF recordings as sessions (``--replay FILE.xdf``) and our sessions as XDF (``export``).

Reading (through pyxdf, the ``[lsl]`` extra): every numeric stream of at least three channels
is a candidate IMU. A stream goes to a placement by ``xdf_map`` (``placement -> stream name,
type or source_id``) when given; else by the placement written in its ``<desc>`` (our exports),
else by its name or type spelling a placement (``LeftArm``, ``left_arm_imu``). Its channels and
units go through :func:`evimae_stream.channel_map.channel_map`. With ``xdf_labels`` (a marker
stream's name) the markers become labels: a marker starts a segment that lasts to the next
marker; an :data:`END_MARKERS` marker only ends one. Timestamps (clock offsets applied by pyxdf,
no dejitter: our time maps do that) count from the file's ``t0_ns`` (ours) or the first IMU
sample. Video pixels are not in XDF: a replayed XDF is IMU-only. A file whose writer was killed
reads up to its last whole chunk.

Writing (:func:`export_xdf`): one ``IMU`` stream per placement (channels ``ax..gz`` in g and
deg/s), the labels as a ``Markers`` stream, the video's frame index + timestamps as a
``VideoFrames`` stream; stamps are host seconds (``t0_ns`` + session time).
"""

from __future__ import annotations

import io
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import dataclass
from pathlib import Path

import numpy as np

import evimae_stream
from evimae_stream.channel_map import channel_map
from evimae_stream.errors import FormatError, InputError
from evimae_stream.extras import require_xdf
from evimae_stream.sessions.base import ImuStream, Session, SessionReader, register_reader
from evimae_stream.sessions.xdf_writer import CLOCK_OFFSET, XdfWriter, info_xml, scan_chunks
from evimae_stream.types import PLACEMENTS, Segment

log = logging.getLogger(__name__)

#: the session kind this module reads (its reader's name in READERS)
KIND = "xdf"
#: markers that end a label segment without starting one
END_MARKERS = frozenset({"", "end", "null", "none"})
#: samples per chunk in an export
CHUNK = 500


def _field(info: dict, key: str, default: str = "") -> str:
    value = info.get(key)
    return str(value[0]) if value and value[0] is not None else default


def _desc(info: dict) -> dict:
    desc = info.get("desc")
    return desc[0] if desc and isinstance(desc[0], dict) else {}


def _channels(info: dict) -> tuple[list[str], list[str]]:
    """(labels, units) of a pyxdf stream info ('' where not given)."""
    ch = _desc(info).get("channels")
    rows = ch[0].get("channel", []) if ch and isinstance(ch[0], dict) else []
    n = int(_field(info, "channel_count", "0"))
    labels = [_field(r, "label") for r in rows] + [""] * max(0, n - len(rows))
    units = [_field(r, "unit") for r in rows] + [""] * max(0, n - len(rows))
    return labels[:n], units[:n]


def _norm(text: str) -> str:
    return re.sub(r"[^a-z0-9]", "", text.lower())


def _placement_of(info: dict) -> str | None:
    own = _field(_desc(info), "placement")
    if own in PLACEMENTS:
        return own
    names = _norm(_field(info, "name")) + " " + _norm(_field(info, "type"))
    hits = [p for p in PLACEMENTS if _norm(p) in names]
    return hits[0] if len(hits) == 1 else None


def _is_imu(stream: dict) -> bool:
    info = stream["info"]
    fmt = _field(info, "channel_format")
    return fmt != "string" and int(_field(info, "channel_count", "0")) >= 3


def _assign(streams: list[dict], xdf_map: dict[str, str] | None, path: Path) -> dict[str, dict]:
    """placement -> stream (see the module doc)."""
    imus = [s for s in streams if _is_imu(s)]
    out: dict[str, dict] = {}
    if xdf_map:
        for placement, want in xdf_map.items():
            if placement not in PLACEMENTS:
                raise InputError(f"--xdf-map {placement}={want}: unknown placement; use one of "
                                 f"{', '.join(PLACEMENTS)}")  # fmt: skip
            keys = ("name", "type", "source_id")
            hits = [s for s in imus if want in (_field(s["info"], k) for k in keys)]
            if len(hits) != 1:
                raise InputError(
                    f"--xdf-map {placement}={want}: {len(hits)} IMU streams of {path} have that "
                    f"name, type or source_id; the file has {_names(imus)}"
                )
            out[placement] = hits[0]
        return out
    for s in imus:
        p = _placement_of(s["info"])
        if p is not None and p not in out:
            out[p] = s
    if not out:
        raise InputError(
            f"{path}: no IMU stream names a placement ({_names(imus)}); map them with "
            "--xdf-map left_arm=STREAM_NAME ..."
        )
    return {p: out[p] for p in PLACEMENTS if p in out}


def _names(streams: list[dict]) -> str:
    return ", ".join(repr(_field(s["info"], "name")) for s in streams) or "no numeric stream"


def _imu(placement: str, stream: dict, t0_s: float, path: Path) -> ImuStream:
    info = stream["info"]
    where = f"{path} stream {_field(info, 'name')!r}"
    labels, units = _channels(info)
    cmap = channel_map(labels, units, where)
    t = np.asarray(stream["time_stamps"], dtype=np.float64) - t0_s
    values = np.asarray(stream["time_series"]).reshape(len(t), -1)
    keep = np.concatenate([[True], np.diff(t) > 0]) if len(t) else np.zeros(0, bool)
    if not keep.all():
        log.warning("%s: %d samples not after the previous one dropped", where, (~keep).sum())
    t, values = t[keep], values[keep]
    rate = float(_field(info, "nominal_srate", "0") or 0)
    if rate <= 0:
        rate = (len(t) - 1) / (t[-1] - t[0]) if len(t) > 1 and t[-1] > t[0] else 50.0
    return ImuStream(placement, t, cmap.apply(values), rate, cmap.channels)


def markers_to_labels(stamps: np.ndarray, markers: list[str], end_s: float) -> list[Segment]:
    """Label segments of a marker stream (see the module doc); the last open one ends at
    ``end_s``."""
    out: list[Segment] = []
    current: tuple[float, str] | None = None
    for t, text in zip(stamps, markers, strict=True):
        if current is not None:
            out.append(Segment(current[0], max(current[0], float(t)), current[1]))
            current = None
        if text.strip().lower() not in END_MARKERS:
            current = (float(t), text)
    if current is not None:
        out.append(Segment(current[0], max(current[0], end_s), current[1]))
    return out


def _labels(streams: list[dict], name: str, t0_s: float, end_s: float, path: Path):
    hits = [s for s in streams if _field(s["info"], "name") == name]
    markers = [s for s in hits if _field(s["info"], "channel_format") == "string"]
    if len(markers) != 1:
        have = [s for s in streams if _field(s["info"], "channel_format") == "string"]
        raise InputError(f"--xdf-labels {name}: not one marker stream of {path} has that name; "
                         f"it has {_names(have)}")  # fmt: skip
    s = markers[0]
    stamps = np.asarray(s["time_stamps"], dtype=np.float64) - t0_s
    return markers_to_labels(stamps, [str(row[0]) for row in s["time_series"]], end_s)


@dataclass
class XdfSession(Session):
    """An XDF file opened as a session (IMU streams and, when asked, labels)."""

    @classmethod
    def open(cls, path: Path, xdf_map: dict[str, str] | None = None, xdf_labels: str | None = None):
        pyxdf = require_xdf(f"--replay {path}")
        data = Path(path).read_bytes()
        end, tags = scan_chunks(data)
        if end == 0:
            raise FormatError(f"{path}: not an XDF file (no XDF: magic)")
        if end < len(data):
            log.warning("%s: the last %d bytes are a cut chunk (writer killed?); ignored",
                        path, len(data) - end)  # fmt: skip
        try:
            streams, header = pyxdf.load_xdf(
                io.BytesIO(data[:end]),
                synchronize_clocks=CLOCK_OFFSET in tags,
                dejitter_timestamps=False,
            )
        except Exception as exc:
            raise FormatError(f"{path}: unreadable XDF ({exc})") from None
        chosen = _assign(streams, xdf_map, path)
        t0_text = _field(header["info"], "t0_ns") if header else ""
        firsts = [s["time_stamps"][0] for s in chosen.values() if len(s["time_stamps"])]
        t0_ns = int(t0_text) if t0_text else round(min(firsts, default=0.0) * 1e9)
        t0_s = t0_ns / 1e9
        imu = {p: _imu(p, s, t0_s, path) for p, s in chosen.items()}
        session = cls(path=Path(path), kind=KIND, imu=imu, t0_ns=t0_ns)
        if xdf_labels:
            end_s = session.duration_s
            session.labels = _labels(streams, xdf_labels, t0_s, end_s, path)
            session.classes = sorted({seg.label for seg in session.labels})
        return session

    def close(self) -> None:
        """Nothing stays open (pyxdf reads the whole file)."""


register_reader(
    SessionReader(
        KIND,
        detect=lambda p: p.is_file() and p.suffix.lower() == ".xdf",
        open=XdfSession.open,
        describes="an XDF file (.xdf) of LSL streams",
        hints=("xdf_map", "xdf_labels"),
    )
)


# ----------------------------------------------------------------------------- export


def _desc_element(channels: list[tuple[str, str, str]], **extra: object) -> ET.Element:
    """An LSL ``<desc>``: ``<channels>`` (label, unit, type each), then ``extra`` fields."""
    desc = ET.Element("desc")
    chans = ET.SubElement(desc, "channels")
    for label, unit, kind in channels:
        ch = ET.SubElement(chans, "channel")
        ET.SubElement(ch, "label").text = label
        if unit:
            ET.SubElement(ch, "unit").text = unit
        ET.SubElement(ch, "type").text = kind
    for key, value in extra.items():
        ET.SubElement(desc, key).text = str(value)
    acq = ET.SubElement(desc, "acquisition")
    ET.SubElement(acq, "software").text = f"evimae-stream {evimae_stream.__version__}"
    return desc


def _stream(name, kind, n, rate, fmt, source_id, desc) -> ET.Element:
    fields = {"name": name, "type": kind, "channel_count": n, "nominal_srate": repr(float(rate)),
              "channel_format": fmt, "source_id": source_id}  # fmt: skip
    return info_xml(fields, desc)


def imu_channels(channels: tuple[str, ...]) -> list[tuple[str, str, str]]:
    """(label, unit, type) of our IMU channels, as LSL ``<desc><channels>`` write them."""
    return [
        (c, "g", "Acceleration") if c.startswith("a") else (c, "deg/s", "AngularVelocity")
        for c in channels
    ]


def _write_blocks(writer: XdfWriter, sid: int, stamps: np.ndarray, values) -> None:
    for i in range(0, len(stamps), CHUNK):
        writer.write(sid, stamps[i : i + CHUNK], values[i : i + CHUNK])


def export_xdf(session: Session, out: Path) -> Path:
    """Write ``session`` as the XDF file ``out`` (see the module doc); returns ``out``."""
    t0_ns = int(session.t0_ns or 0)
    t0_s = t0_ns / 1e9
    with XdfWriter(out, header={"t0_ns": t0_ns}) as w:
        for p, s in session.imu.items():
            desc = _desc_element(imu_channels(s.channels), placement=p)
            info = _stream(p, "IMU", len(s.channels), s.rate_hz, "float32", f"evimae:{p}", desc)
            _write_blocks(w, w.add_stream(info), s.t + t0_s, s.values)
        if session.labels:
            stamps, markers = [], []
            for k, seg in enumerate(session.labels):
                stamps.append(seg.start_s)
                markers.append([seg.label])
                nxt = session.labels[k + 1].start_s if k + 1 < len(session.labels) else None
                if nxt is None or nxt > seg.end_s:
                    stamps.append(seg.end_s)
                    markers.append(["end"])
            desc = _desc_element([("label", "", "Marker")])
            sid = w.add_stream(_stream("labels", "Markers", 1, 0, "string", "evimae:labels", desc))
            _write_blocks(w, sid, np.asarray(stamps) + t0_s, markers)
        if session.has_video:
            v = session.video
            ft = session.frame_times()
            desc = _desc_element([("frame_index", "", "FrameIndex")], fps=v.fps, width=v.width,
                                 height=v.height, file=v.path or "")  # fmt: skip
            info = _stream("video_frames", "VideoFrames", 1, v.fps, "int64", "evimae:video", desc)
            _write_blocks(w, w.add_stream(info), ft + t0_s, np.arange(len(ft)).reshape(-1, 1))
    return Path(out)
