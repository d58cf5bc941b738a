"""``--imu-ports`` parsing: typed configs for every URI form, one-line errors for bad items."""

from __future__ import annotations

import pytest

from drivers.config import BleImuConfig, SerialImuConfig, SyntheticImuConfig
from drivers.uri import parse_imu_ports
from evimae_stream.errors import InputError


def test_placed_items_are_typed_and_ordered_by_placement():
    got = parse_imu_ports(
        [
            "right_leg=ble:c1:d2:e3:f4:a5:b6?protocol=witmotion",
            "left_arm=/dev/ttyUSB0",
            "right_arm=serial:/dev/ttyACM1?baud=9600&protocol=csv&cols=t,_,ax,ay,az&scale=0.001"
            "&tunit=us&rate=100",
        ]
    )
    assert list(got) == ["left_arm", "right_arm", "right_leg"]
    la, ra, rl = got["left_arm"], got["right_arm"], got["right_leg"]
    assert isinstance(la, SerialImuConfig)
    assert (la.port, la.baud, la.protocol, la.placement) == (
        "/dev/ttyUSB0",
        115200,
        "csv",
        "left_arm",
    )
    assert isinstance(ra, SerialImuConfig)
    assert ra.baud == 9600 and ra.rate_hz == 100.0
    assert ra.text.cols == ("t", "_", "ax", "ay", "az")
    assert ra.text.scale == pytest.approx(0.001) and ra.text.tunit == "us"
    assert isinstance(rl, BleImuConfig)
    assert rl.address == "C1:D2:E3:F4:A5:B6" and rl.protocol == "witmotion"


def test_bare_uris_fill_placements_in_model_order():
    got = parse_imu_ports("synthetic?seed=3&rate=100 ble:AA:BB:CC:DD:EE:FF /dev/ttyUSB1")
    assert list(got) == ["left_arm", "right_arm", "left_leg"]
    syn = got["left_arm"]
    assert isinstance(syn, SyntheticImuConfig) and syn.seed == 3 and syn.rate_hz == 100.0
    assert isinstance(got["right_arm"], BleImuConfig) and got["right_arm"].protocol == "nus"
    assert got["left_leg"].placement == "left_leg"


def test_ble_nus_takes_text_options_and_macos_uuid_addresses():
    got = parse_imu_ports(["ble:12345678-1234-1234-1234-1234567890ab?protocol=nus&scale=0.001"])
    cfg = got["left_arm"]
    assert isinstance(cfg, BleImuConfig) and cfg.text.scale == pytest.approx(0.001)


@pytest.mark.parametrize(
    ("items", "expected"),
    [
        (["left_hand=/dev/ttyUSB0"], "unknown placement 'left_hand'"),
        (["left_arm=/dev/a", "left_arm=/dev/b"], "placement left_arm is given twice"),
        (["/dev/a", "/dev/b", "/dev/c", "/dev/d", "/dev/e"], "at most 4"),
        (["serial:/dev/x?baud=fast"], "bad baud 'fast'"),
        (["serial:/dev/x?baud=0"], "bad baud '0'"),
        (["serial:/dev/x?protocol=nmea"], "unknown serial protocol 'nmea'"),
        (["ble:AA:BB:CC:DD:EE:FF?protocol=csv"], "unknown BLE protocol 'csv'"),
        (["ble:AA:BB:CC:DD:EE"], "bad BLE address"),
        (["ble:GG:BB:CC:DD:EE:FF"], "bad BLE address"),
        (["serial:/dev/x?cols=ax,ay"], "must name ax, ay and az"),
        (["serial:/dev/x?cols=ax,ay,az,gx"], "all of gx, gy, gz"),
        (["serial:/dev/x?cols=ax,ay,az,q"], "unknown column 'q'"),
        (["serial:/dev/x?tunit=min"], "tunit must be one of"),
        (["serial:/dev/x?scale=-1"], "scale must be a positive number"),
        (["serial:/dev/x?protocol=witmotion&cols=ax,ay,az"], "unknown option 'cols'"),
        (["serial:/dev/x?baud"], "bad option 'baud'"),
        (["synthetic?rate=0"], "rate must be in"),
        (["synthetic?seed=x"], "seed='x' is not a valid int"),
        (["left_arm=/dev/a", "/dev/b"], "mix of PLACEMENT=URI and bare URIs"),
        (["replay:/data/s1"], "replay sources are given with --replay"),
        (["webcam"], "unknown source 'webcam'"),
        (["left_arm="], "no URI after 'left_arm='"),
        ([], "no IMU given"),
    ],
)
def test_bad_items_raise_one_line_naming_the_item(items, expected):
    with pytest.raises(InputError) as info:
        parse_imu_ports(items)
    message = str(info.value)
    assert expected in message
    assert "\n" not in message
    if items and len(items) <= 4 and "mix" not in expected:
        assert "--imu-ports item" in message
