"""The registries: a name registered once (a throw-away protocol, backend, session reader) is
accepted by URI parsing / backend choice / open_session, offered by the CLI, and listed in the
error text of an unknown name; a registry finds the modules of its package by itself."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from drivers.protocols import PROTOCOLS, Protocol, StreamParser, make_parser, register_protocol
from drivers.protocols.base import ImuSample
from drivers.protocols.text_lines import TEXT_OPTIONS
from drivers.uri import parse_imu_ports, parse_imu_uri
from evimae_stream.errors import InputError
from evimae_stream.model import create_model
from evimae_stream.registry import Registry
from evimae_stream.runtime.backends import (
    BACKENDS,
    ModelInputs,
    backend_choices,
    register_backend,
    select_backend,
)
from evimae_stream.runtime.backends.eager import EagerBackend
from evimae_stream.sessions import open_session
from evimae_stream.sessions.base import READERS, Session, SessionReader, register_reader

CPU = torch.device("cpu")


# ------------------------------------------------------------------------------ the registry


def test_a_registry_imports_the_modules_of_its_package(tmp_path, monkeypatch):
    """One new file in the package is all it takes: the registry imports it on first read."""
    package = tmp_path / "toy_plugins"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "alpha.py").write_text(
        "from tests.test_registries import TOY\nTOY.register('alpha', 1)\n"
    )
    (package / "_private.py").write_text("raise RuntimeError('not imported')\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    toy = Registry("toy thing", "toy_plugins")
    monkeypatch.setattr(sys.modules[__name__], "TOY", toy)
    assert toy.names() == ("alpha",) and toy["alpha"] == 1
    with pytest.raises(InputError, match=r"^--toy: unknown toy thing 'beta'; use one of alpha$"):
        toy.get_or_fail("beta", "--toy")
    with pytest.raises(ValueError, match="already registered"):
        toy.register("alpha", 2)


TOY: Registry[int] = Registry("toy thing")


# ------------------------------------------------------------------------------ protocols


class _ToyParser(StreamParser):
    """``toy``: one byte per sample, its value in g on x."""

    name = "toy"

    def __init__(self, fmt=None) -> None:
        super().__init__()
        self.fmt = fmt

    @property
    def channels(self) -> int:
        return 3

    def _feed(self, data: bytes) -> list[ImuSample]:
        return [ImuSample(np.array([b, 0, 0], np.float32), None) for b in data]

    def reset(self) -> None:
        pass


class _ToyBleParser(_ToyParser):
    name = "toyble"


@pytest.fixture
def toy_protocols():
    serial = register_protocol(Protocol("serial", _ToyParser, text_options=TEXT_OPTIONS))
    ble = register_protocol(
        Protocol("ble", _ToyBleParser, notify_uuid="0000beef-0000", advertised=r"^toy")
    )
    yield serial, ble
    PROTOCOLS["serial"].unregister("toy")
    PROTOCOLS["ble"].unregister("toyble")


def test_the_built_in_protocols_are_registered_once_each():
    assert PROTOCOLS["serial"].names() == ("csv", "witmotion")
    assert PROTOCOLS["ble"].names() == ("nus", "witmotion")


def test_a_registered_protocol_is_accepted_by_uris_parsers_and_devices(toy_protocols):
    from evimae_stream.commands.devices import ble_protocol_for

    cfg = parse_imu_uri("serial:/dev/ttyX?protocol=toy&scale=2", "left_arm")
    assert cfg.protocol == "toy" and cfg.text.scale == 2.0  # its text options are allowed
    parser = make_parser("serial", "toy", cfg.text)
    assert isinstance(parser, _ToyParser) and parser.fmt is cfg.text
    assert [s.values[0] for s in parser.feed(b"\x01\x02")] == [1.0, 2.0]
    ble = parse_imu_ports(["right_arm=ble:AA:BB:CC:DD:EE:FF?protocol=toyble"])["right_arm"]
    assert ble.protocol == "toyble"
    assert ble_protocol_for("Toy watch 12") == "toyble"
    with pytest.raises(InputError, match=r"unknown option 'scale'"):
        parse_imu_uri("ble:AA:BB:CC:DD:EE:FF?protocol=toyble&scale=2")  # no text options


def test_unknown_protocol_errors_list_the_registered_ones(toy_protocols):
    with pytest.raises(InputError, match=r"unknown serial protocol 'nmea'; .*csv, witmotion, toy"):
        parse_imu_uri("serial:/dev/ttyX?protocol=nmea")
    with pytest.raises(InputError, match=r"protocol=csv\|witmotion\|toy.*nus\|witmotion\|toyble"):
        parse_imu_uri("webcam")


def test_the_cli_lists_registered_protocols(toy_protocols, capsys):
    from evimae_stream.cli import build_parser
    from evimae_stream.commands import run as run_command

    parser = build_parser()
    run_command.add_arguments(parser)
    help_text = " ".join(parser.format_help().split())
    assert "protocol=csv|witmotion|toy" in help_text
    assert "protocol=nus|witmotion|toyble" in help_text


# ------------------------------------------------------------------------------ backends


class _ToyBackend(EagerBackend):
    """Eager under another name, tried by ``auto`` before everything else."""

    name = "toy"
    auto_rank = 99


@pytest.fixture
def toy_backend():
    yield register_backend(_ToyBackend)
    BACKENDS.unregister("toy")


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    model = create_model("evimae_tiny", 5, imu_depth=1, video_depth=1).eval()
    cfg = model.cfg
    g = torch.Generator().manual_seed(1)
    example = ModelInputs(torch.randn(1, 12, cfg.spec_time, cfg.spec_freq, generator=g), None)
    return model, example


def test_built_in_backends_and_choices():
    assert set(BACKENDS) == {"eager", "compile", "aot", "tensorrt", "int8"}
    assert backend_choices()[0] == "auto" and set(backend_choices()[1:]) == set(BACKENDS)


def test_a_registered_backend_is_chosen_by_name_and_by_auto(toy_backend, tiny):
    model, example = tiny
    picked = select_backend("toy", None, model, example, ("imu_only",), device=CPU)
    assert type(picked) is _ToyBackend and picked.label == "toy/fp32/cpu"
    # auto without timing keeps the most preferred candidate that verifies: the toy (rank 99)
    auto = select_backend("auto", "bf16", model, example, ("imu_only",), device=CPU, timed=False)
    assert type(auto) is _ToyBackend and auto.precision == "bf16"


def test_unknown_backend_error_and_cli_choices_list_registered_ones(toy_backend, tiny):
    from evimae_stream.cli import build_parser
    from evimae_stream.commands import run as run_command

    model, example = tiny
    with pytest.raises(InputError, match=r"^--backend: unknown backend 'nope'; use one of .*toy"):
        select_backend("nope", None, model, example, ("imu_only",), device=CPU)
    parser = build_parser()
    run_command.add_arguments(parser)
    assert parser.parse_args(["--backend", "toy"]).backend == "toy"


# ------------------------------------------------------------------------------ session readers


class _ToySession(Session):
    def close(self) -> None:
        pass


@pytest.fixture
def toy_reader():
    reader = register_reader(
        SessionReader(
            "toy",
            detect=lambda p: p.suffix == ".toy",
            open=lambda p, flavour="plain": _ToySession(path=p, kind="toy", meta={"f": flavour}),
            describes="a .toy file",
            hints=("flavour",),
        )
    )
    yield reader
    READERS.unregister("toy")


def test_the_built_in_readers_are_registered():
    assert set(READERS) == {"recording", "wear", "cmummac", "xdf"}


def test_a_registered_reader_opens_its_files_with_its_hints(toy_reader, tmp_path: Path):
    path = tmp_path / "a.toy"
    path.write_text("x")
    session = open_session(path, flavour="salty")
    assert isinstance(session, _ToySession) and session.kind == "toy"
    assert session.meta == {"f": "salty"}
    with pytest.raises(InputError, match=r"option\(s\) subject do not apply to a toy session"):
        open_session(path, subject=1)


def test_an_unrecognised_path_lists_every_reader(toy_reader, tmp_path: Path):
    path = tmp_path / "notes.txt"
    path.write_text("x")
    with pytest.raises(InputError, match=r"not a recognised session .*session\.json.*a \.toy file"):
        open_session(path)
