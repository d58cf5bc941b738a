"""Training config: YAML + --set typing and validation; CLI errors exit 2 with one line."""

from __future__ import annotations

from pathlib import Path

import pytest

from evimae_stream.errors import InputError
from tests.helpers.training import REPO, run_train
from training.config import load_config

SRC = "data.sources=[{kind: synthetic, seed: 3}]"


def test_set_types_values_and_nested_list_items(tmp_path: Path) -> None:
    recipe = tmp_path / "r.yaml"
    recipe.write_text(
        "data:\n  sources:\n    - {kind: session, path: /x}\n    - {kind: synthetic, seed: 4}\n"
        "train:\n  epochs: 3\n"
    )
    cfg = load_config(
        recipe,
        ["train.lr=1e-4", "data.sources.0.path=/data/sbj_1.csv", "imu.fill_missing=true"],
    )
    assert cfg.train.lr == pytest.approx(1e-4)
    assert cfg.train.epochs == 3
    assert cfg.data.sources[0].path == "/data/sbj_1.csv"
    assert cfg.data.sources[1].seed == 4
    assert cfg.imu.fill_missing is True


def test_norm_profile_sets_published_constants() -> None:
    cfg = load_config(None, [SRC, "imu.norm=cmummac"])
    assert (cfg.imu.norm_mean, cfg.imu.norm_std) == (-70.84, 23.44)


@pytest.mark.parametrize(
    ("item", "names"),
    [
        ("train.nope=1", "train.nope"),
        ("train.epochs=two", "train.epochs"),
        ("train.precision=fp8", "train.precision"),
        ("model.mode=audio_only", "model.mode"),
        ("imu.fill_missing=maybe", "imu.fill_missing"),
        ("data.sources.5.path=/x", "data.sources.5.path"),
    ],
)
def test_bad_set_names_the_key(item: str, names: str) -> None:
    with pytest.raises(InputError, match=names.replace(".", r"\.")):
        load_config(None, [SRC, item])


def test_missing_recipe_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match=r"nope\.yaml"):
        load_config(tmp_path / "nope.yaml")


def test_shipped_recipes_parse() -> None:
    recipes = sorted((REPO / "configs" / "train").glob("*.yaml"))
    names = {p.stem for p in recipes}
    assert {"demo", "wear_pretrain", "wear_finetune", "cmummac_pretrain", "cmummac_finetune",
            "imu_only"} <= names  # fmt: skip
    for p in recipes:
        load_config(p)


@pytest.mark.parametrize(
    ("sets", "needle"),
    [
        (["train.bogus=1"], "train.bogus"),
        (["train.batch_size=-3"], "train.batch_size"),
    ],
)
def test_main_config_errors_return_2_with_one_line(
    sets: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from training.train import main

    args = ["--set", SRC]
    for s in sets:
        args += ["--set", s]
    assert main(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("train.py:") and needle in err[0], err


def test_cli_missing_data_path_exits_2_with_one_line(tmp_path: Path) -> None:
    proc = run_train(
        ["--set", "data.sources=[{kind: session, path: /no/such/session}]",
         "--set", f"run_dir={tmp_path}"],
        timeout=120,
    )  # fmt: skip
    assert proc.returncode == 2, proc.stderr
    err = [line for line in proc.stderr.splitlines() if line.startswith("train.py:")]
    assert len(err) == 1 and "/no/such/session" in err[0], proc.stderr
    assert "Traceback" not in proc.stderr
