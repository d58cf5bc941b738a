"""THE parser of ``--imu-ports`` (DESIGN §4): items -> typed source configs per placement.

Syntax: up to four items, either all ``PLACEMENT=URI`` (placements left_arm, right_arm, left_leg,
right_leg) or all bare URIs (assigned in that order). URIs:

- ``/dev/ttyUSB0`` or ``serial:/dev/ttyUSB0?baud=115200&protocol=NAME`` — serial; ``rate=``
  nominal Hz.
- ``ble:AA:BB:CC:DD:EE:FF?protocol=NAME`` — BLE.

The protocol names, each transport's default and which protocols take the text-line options
(``cols=ax,ay,az,t`` with ``_`` skipping a column, ``scale=`` g per unit, ``gscale=`` deg/s per
unit, ``tunit=ms|s|us``) come from :data:`drivers.protocols.PROTOCOLS`.
- ``synthetic[?seed=..&rate=..]`` — a simulated IMU.
- ``lsl:name=NAME[&type=..&source_id=..&cols=..&unit=..&gunit=..&rate=..]`` — a Lab Streaming
  Layer stream (:mod:`drivers.lsl`; needs the ``[lsl]`` extra).

Every problem raises :class:`~evimae_stream.errors.InputError` with one line naming the item.
"""

from __future__ import annotations

import re
from collections.abc import Sequence

from drivers.config import (
    BleImuConfig,
    ImuSourceConfig,
    LslImuConfig,
    SerialImuConfig,
    SyntheticImuConfig,
)
from drivers.protocols import PROTOCOLS, TextFormat, default_protocol
from evimae_stream.errors import InputError
from evimae_stream.types import PLACEMENTS

MAX_IMUS = len(PLACEMENTS)
_PLACEMENT_WORD = re.compile(r"^[A-Za-z][A-Za-z0-9_\-]*$")
_WINDOWS_COM = re.compile(r"^COM\d+$", re.IGNORECASE)


def parse_imu_ports(items: Sequence[str] | str) -> dict[str, ImuSourceConfig]:
    """Parse ``--imu-ports`` items into ``{placement: config}`` in the model's placement order.

    ``items`` is the argparse list (a single string is split on whitespace).
    """
    if isinstance(items, str):
        items = items.split()
    items = [item.strip() for item in items if item.strip()]
    if not items:
        raise InputError("--imu-ports: no IMU given; pass e.g. left_arm=/dev/ttyUSB0")
    if len(items) > MAX_IMUS:
        raise InputError(
            f"--imu-ports: {len(items)} items given, at most {MAX_IMUS} "
            f"({', '.join(PLACEMENTS)}); remove {' '.join(items[MAX_IMUS:])!r}"
        )
    split = [_split_placement(item) for item in items]
    named = [placement is not None for placement, _ in split]
    if any(named) and not all(named):
        bare = next(item for item, is_named in zip(items, named, strict=True) if not is_named)
        raise InputError(
            f"--imu-ports item {bare!r}: mix of PLACEMENT=URI and bare URIs; give every item "
            "a placement or none (bare URIs are assigned left_arm, right_arm, left_leg, right_leg)"
        )
    out: dict[str, ImuSourceConfig] = {}
    for index, (item, (placement, uri)) in enumerate(zip(items, split, strict=True)):
        placement = placement if placement is not None else PLACEMENTS[index]
        if placement in out:
            raise InputError(
                f"--imu-ports item {item!r}: placement {placement} is given twice; "
                "each placement takes one IMU"
            )
        out[placement] = parse_imu_uri(uri, placement, item=item)
    return {p: out[p] for p in PLACEMENTS if p in out}


def _split_placement(item: str) -> tuple[str | None, str]:
    """``left_arm=URI`` -> (left_arm, URI); a bare URI -> (None, URI)."""
    head, sep, tail = item.partition("=")
    if not sep or not _PLACEMENT_WORD.match(head):
        return None, item
    if head.lower() in ("serial", "ble", "synthetic", "replay", "lsl"):
        return None, item
    if head not in PLACEMENTS:
        raise InputError(
            f"--imu-ports item {item!r}: unknown placement {head!r}; use one of "
            f"{', '.join(PLACEMENTS)}"
        )
    if not tail:
        raise InputError(f"--imu-ports item {item!r}: no URI after '{head}='")
    return head, tail


def parse_imu_uri(
    uri: str, placement: str = "left_arm", item: str | None = None
) -> ImuSourceConfig:
    """Parse one URI (see the module docstring) into its typed config."""
    where = f"--imu-ports item {item or uri!r}"
    scheme, rest = _scheme(uri)
    if scheme == "lsl":
        return _lsl(where, placement, _query(where, rest.lstrip("?")))
    body, _, query_text = rest.partition("?")
    query = _query(where, query_text)
    # the configs validate themselves and name ``where`` in their errors
    if scheme == "serial":
        return _serial(where, placement, body, query)
    if scheme == "ble":
        return _ble(where, placement, body, query)
    if scheme == "synthetic":
        if body:
            raise InputError(f"{where}: write synthetic?seed=1&rate=50, not {uri!r}")
        return _synthetic(where, placement, query)
    if scheme == "replay":
        raise InputError(f"{where}: replay sources are given with --replay PATH, not --imu-ports")
    raise InputError(
        f"{where}: unknown source {uri!r}; use a serial path (/dev/ttyUSB0), "
        f"serial:PATH?baud=..&protocol={PROTOCOLS['serial'].choices()}, "
        f"ble:ADDRESS?protocol={PROTOCOLS['ble'].choices()}, lsl:name=STREAM or synthetic"
    )


def _protocol_options(transport: str, protocol: str) -> tuple[str, ...]:
    """The URI options ``protocol`` takes beyond the transport's own (none when unknown: the
    config names the unknown protocol)."""
    known = PROTOCOLS[transport].get(protocol)
    return known.text_options if known is not None else ()


def _scheme(uri: str) -> tuple[str, str]:
    if uri.startswith(("/", "./", "../")) or _WINDOWS_COM.match(uri.split("?")[0]):
        return "serial", uri
    if uri == "synthetic" or uri.startswith(("synthetic?", "synthetic:")):
        return "synthetic", uri[len("synthetic") :].lstrip(":")
    scheme, sep, rest = uri.partition(":")
    if not sep:
        return "", uri
    return scheme.lower(), rest


def _query(where: str, text: str) -> dict[str, str]:
    if not text:
        return {}
    out: dict[str, str] = {}
    for pair in text.split("&"):
        key, sep, value = pair.partition("=")
        if not sep or not key or not value:
            raise InputError(f"{where}: bad option {pair!r}; write key=value, joined by &")
        if key in out:
            raise InputError(f"{where}: option {key!r} given twice")
        out[key] = value
    return out


def _take(where: str, query: dict[str, str], allowed: Sequence[str]) -> None:
    unknown = sorted(set(query) - set(allowed))
    if unknown:
        raise InputError(
            f"{where}: unknown option {unknown[0]!r}; allowed here: {', '.join(allowed)}"
        )


def _number(where: str, key: str, value: str, kind: type = float):
    try:
        number = kind(value)
    except ValueError:
        raise InputError(f"{where}: {key}={value!r} is not a valid {kind.__name__}") from None
    return number


def _text_format(where: str, query: dict[str, str]) -> TextFormat:
    kwargs: dict = {"where": where}
    if "cols" in query:
        kwargs["cols"] = tuple(c.strip() for c in query["cols"].split(","))
    for key in ("scale", "gscale"):
        if key in query:
            kwargs[key] = _number(where, key, query[key])
    if "tunit" in query:
        kwargs["tunit"] = query["tunit"]
    return TextFormat(**kwargs)


def _serial(where: str, placement: str, path: str, query: dict[str, str]) -> SerialImuConfig:
    if not path:
        raise InputError(f"{where}: no serial port path; write serial:/dev/ttyUSB0")
    protocol = query.get("protocol", default_protocol("serial"))
    allowed = ["baud", "protocol", "rate", *_protocol_options("serial", protocol)]
    _take(where, query, allowed)
    baud_text = query.get("baud", "115200")
    if not baud_text.isdigit() or int(baud_text) <= 0:
        raise InputError(f"{where}: bad baud {baud_text!r}; use a positive integer such as 115200")
    return SerialImuConfig(
        port=path,
        placement=placement,
        baud=int(baud_text),
        protocol=protocol,
        text=_text_format(where, query),
        rate_hz=_number(where, "rate", query["rate"]) if "rate" in query else None,
        uri=where,
    )


def _ble(where: str, placement: str, address: str, query: dict[str, str]) -> BleImuConfig:
    if not address:
        raise InputError(f"{where}: no BLE address; write ble:AA:BB:CC:DD:EE:FF")
    protocol = query.get("protocol", default_protocol("ble"))
    allowed = ["protocol", "rate", *_protocol_options("ble", protocol)]
    _take(where, query, allowed)
    return BleImuConfig(
        address=address,
        placement=placement,
        protocol=protocol,
        text=_text_format(where, query),
        rate_hz=_number(where, "rate", query["rate"]) if "rate" in query else None,
        uri=where,
    )


def _synthetic(where: str, placement: str, query: dict[str, str]) -> SyntheticImuConfig:
    _take(where, query, ["seed", "rate"])
    kwargs: dict = {}
    if "seed" in query:
        kwargs["seed"] = _number(where, "seed", query["seed"], int)
    if "rate" in query:
        kwargs["rate_hz"] = _number(where, "rate", query["rate"])
    return SyntheticImuConfig(placement=placement, uri=where, **kwargs)


def _lsl(where: str, placement: str, query: dict[str, str]) -> LslImuConfig:
    from evimae_stream.extras import require_lsl

    _take(where, query, ["name", "type", "source_id", "cols", "unit", "gunit", "rate"])
    require_lsl(where)
    texts = ("name", "type", "source_id", "unit", "gunit")
    kwargs: dict = {k: query[k] for k in texts if k in query}
    if "cols" in query:
        kwargs["cols"] = tuple(c.strip() for c in query["cols"].split(","))
    if "rate" in query:
        kwargs["rate_hz"] = _number(where, "rate", query["rate"])
    return LslImuConfig(placement=placement, uri=where, **kwargs)
