"""Readers for published data (WEAR, CMU-MMAC, EVI-MAE release) on fixtures in the real layouts."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from evimae_stream.datasets import WEAR_CLASSES
from evimae_stream.errors import FormatError, InputError
from evimae_stream.sessions import (
    CmuMmacSession,
    ReleaseClipDataset,
    WearSession,
    open_session,
)
from tests.helpers.sessions import (
    CMU_QUANTITIES,
    CMU_SENSORS,
    build_cmummac,
    build_release,
    build_wear,
    cmu_value,
    decode_index,
    label_runs,
    read_wear_excerpt,
    write_video,
)


@pytest.fixture(scope="module")
def wear_csv(wear_dir, tmp_path_factory) -> Path:
    return build_wear(tmp_path_factory.mktemp("wear"), wear_dir / "right_wrist_0_10.csv")


@pytest.fixture(scope="module")
def cmu_csv(tmp_path_factory) -> Path:
    return build_cmummac(tmp_path_factory.mktemp("cmu"))


# -- WEAR ------------------------------------------------------------------------------------------


def test_wear_imu_from_real_excerpt(wear_csv, wear_dir):
    times, acc, _ = read_wear_excerpt(wear_dir / "right_wrist_0_10.csv")
    s = open_session(wear_csv)
    assert isinstance(s, WearSession) and s.kind == "wear"
    assert list(s.imu) == ["left_arm", "right_arm", "left_leg", "right_leg"]
    ra = s.imu["right_arm"]
    assert ra.rate_hz == 50.0 and ra.values.dtype == np.float32
    np.testing.assert_array_equal(ra.values, acc.astype(np.float32))
    np.testing.assert_allclose(ra.t, times, atol=1e-6)  # row/50 matches the recorded clock
    for p in ("left_arm", "left_leg", "right_leg"):
        assert not s.imu[p].values.any()
    assert s.classes == list(WEAR_CLASSES) and len(s.classes) == 18
    assert not s.has_video and s.video is None
    assert s.duration_s == pytest.approx((len(acc) - 1) / 50)


def test_wear_labels_from_split_json_and_from_csv(wear_csv, wear_dir, tmp_path):
    _, _, labels = read_wear_excerpt(wear_dir / "right_wrist_0_10.csv")
    runs = label_runs(labels, 50.0)
    assert {r[2] for r in runs} == {"jogging (sidesteps)", "bench-dips", "stretching (shoulders)"}
    s = open_session(wear_csv)
    assert [(x.start_s, x.end_s, x.label) for x in s.labels] == runs
    assert s.meta["labels_from"].endswith("wear_split_1.json")
    # without the JSON: the CSV's label column gives the same segments
    (tmp_path / "sbj_0.csv").write_bytes(wear_csv.read_bytes())
    s2 = open_session(tmp_path / "sbj_0.csv")
    assert [(x.start_s, x.end_s, x.label) for x in s2.labels] == runs
    assert s2.meta["labels_from"].endswith("sbj_0.csv")
    # a JSON given explicitly wins over the CSV column
    doc = {"database": {"sbj_0": {"annotations": [{"label": "burpees", "segment": [1, 2]}]}}}
    (tmp_path / "other.json").write_text(json.dumps(doc))
    s3 = open_session(tmp_path / "sbj_0.csv", split=tmp_path / "other.json")
    assert [(x.start_s, x.end_s, x.label) for x in s3.labels] == [(1.0, 2.0, "burpees")]
    assert s3.label_at(1.5) == "burpees" and s3.label_at(2.5) is None


def test_wear_directory_with_video_and_subject(wear_csv, tmp_path):
    d = tmp_path / "wear"
    (d / "videos").mkdir(parents=True)
    for n in (0, 1):
        (d / f"sbj_{n}.csv").write_bytes(wear_csv.read_bytes())
    write_video(d / "videos" / "sbj_1.mp4", 40, 60.0, "mp4v")
    with pytest.raises(InputError, match="subject"):
        open_session(d)
    with pytest.raises(InputError, match="sbj_7"):
        open_session(d, subject=7)
    s = open_session(d, subject=1)
    assert s.meta["subject"] == "sbj_1" and s.has_video
    assert (s.video.num_frames, s.video.fps, s.video.width) == (40, 60.0, 96)
    assert decode_index(s.frame_at(0.25)) == 15 and decode_index(s.frame_at(0.0)) == 0
    assert decode_index(s.frame_at(0.09)) == 5  # nearest of 0.0833 and 0.1
    got = [(round(t, 4), decode_index(f)) for t, f in s.iter_frames(0.2, 0.3)]
    assert got == [(round(i / 60, 4), i) for i in range(12, 18)]
    assert not open_session(d, subject=0).has_video
    with pytest.raises(InputError, match="do not apply"):
        open_session(d, subject=0, labels="x.csv")


# -- CMU-MMAC --------------------------------------------------------------------------------------


def test_cmummac_columns_by_name(cmu_csv):
    s = open_session(cmu_csv)
    assert isinstance(s, CmuMmacSession) and s.kind == "cmummac"
    expected = {"left_arm": 0, "right_arm": 4, "left_leg": 2, "right_leg": 3}  # sensor index
    for placement, si in expected.items():
        st = s.imu[placement]
        assert st.channels == ("ax", "ay", "az", "gx", "gy", "gz") and st.rate_hz == 30.0
        for r in (0, 45, 89):
            want = [cmu_value(r, si, qi) for qi in range(6)]  # Accel X/Y/Z then Gyro X/Y/Z
            np.testing.assert_allclose(st.values[r], want, rtol=1e-6)
    t = s.imu["left_arm"].t
    assert t[0] == 0.0
    np.testing.assert_allclose(t, np.arange(90) / 30 + 0.002 * np.sin(3 * np.arange(90)), atol=2e-6)
    assert s.meta["first_timestamp"] == pytest.approx(1234.5)


def test_cmummac_shuffled_columns_still_by_name(cmu_csv, tmp_path):
    lines = cmu_csv.read_text().splitlines()
    table = [ln.split(",") for ln in lines]
    order = [0, *reversed(range(1, len(table[0])))]
    (tmp_path / "S07_Brownie.csv").write_text(
        "\n".join(",".join(row[i] for i in order) for row in table) + "\n"
    )
    a = open_session(cmu_csv).imu["right_arm"].values
    b = open_session(tmp_path / "S07_Brownie.csv").imu["right_arm"].values
    np.testing.assert_array_equal(a, b)


def test_cmummac_video_and_keysteps(cmu_csv):
    s = open_session(cmu_csv)
    assert s.has_video and s.video.fps == 30.0 and s.video.num_frames == 30
    assert decode_index(s.frame_at(0.5)) == 15
    assert [decode_index(f) for _, f in s.iter_frames(0.0, 0.2)] == [0, 1, 2, 3, 4, 5]
    assert [(x.start_s, x.end_s, x.label) for x in s.labels] == [
        (0.0, 1.2, "stir the mix"),
        (1.2, 2.5, "crack egg"),
    ]
    assert s.meta["step_ids"] == {"stir the mix": "2", "crack egg": "1"}
    assert s.classes == ["crack egg", "stir the mix"]  # in step-id order


def test_cmummac_without_gyro_columns(tmp_path):
    acc_only = [f"{s}_Accel_{a}" for a in "XYZ" for s in CMU_SENSORS]
    lines = ["timestamp," + ",".join(acc_only)]
    lines += [f"{r / 30:.6f}," + ",".join(["0.5"] * len(acc_only)) for r in range(10)]
    (tmp_path / "S01_Eggs.csv").write_text("\n".join(lines) + "\n")
    s = open_session(tmp_path / "S01_Eggs.csv")
    assert s.imu["left_leg"].channels == ("ax", "ay", "az") and not s.has_video and not s.labels
    assert len(CMU_QUANTITIES) == 9


# -- EVI-MAE release -------------------------------------------------------------------------------


def test_release_clips(wear_dir, tmp_path):
    root = build_release(tmp_path, wear_dir / "right_wrist_0_10.csv")
    ds = ReleaseClipDataset(root, split="train_finetune")
    assert len(ds) == 2 and ds.classes == ["jogging", "push-ups (complex)", "lunges"]
    w = ds[0]
    _, acc, _ = read_wear_excerpt(wear_dir / "right_wrist_0_10.csv")
    assert w.imu.shape == (250, 12) and w.imu.dtype == np.float32 and w.imu_rate == 50.0
    # model order left_arm, right_arm, left_leg, right_leg = fixture factors 4, 1, 3, 2
    for slot, factor in enumerate((4, 1, 3, 2)):
        np.testing.assert_allclose(w.imu[:, 3 * slot : 3 * slot + 3], acc[:250] * factor, rtol=1e-6)
    assert w.labels == [1] and w.clip_id == "wear_clip" and w.video == root / "video/wear_clip.mp4"
    c = ds[1]
    assert c.imu.shape == (150, 12) and c.imu_rate == 30.0 and c.video is None
    assert c.labels == [0, 2]
    for slot, si in enumerate((0, 4, 2, 3)):
        np.testing.assert_allclose(
            c.imu[7, 3 * slot : 3 * slot + 3], [cmu_value(7, si, q) for q in range(3)], rtol=1e-6
        )
    with pytest.raises(InputError, match="ReleaseClipDataset"):
        open_session(root)
    with pytest.raises(InputError, match="no labels_"):
        ReleaseClipDataset(root, split="test_finetune")
    with pytest.raises(InputError, match="choose one of"):
        ReleaseClipDataset(root, split="val")


# -- malformed files -------------------------------------------------------------------------------


def _edit(src: Path, dst: Path, fn) -> Path:
    lines = src.read_text().split("\n")
    dst.write_text("\n".join(fn(lines)))
    return dst


def _replace_cell(line: str, col: int, value: str) -> str:
    cells = line.split(",")
    cells[col] = value
    return ",".join(cells)


@pytest.mark.parametrize(
    ("fn", "row", "words"),
    [
        (lambda ls: [ls[0].replace("left_arm_acc_y,", ""), *ls[1:]], 1, "left_arm_acc_y"),
        (lambda ls: [*ls[:40], _replace_cell(ls[40], 5, "1.2.3"), *ls[41:]], 41, "number"),
        (lambda ls: [*ls[:99], ls[99][:20], *ls[100:]], 100, "fields"),
    ],
)
def test_wear_malformed(wear_csv, tmp_path, fn, row, words):
    bad = _edit(wear_csv, tmp_path / "sbj_0.csv", fn)
    with pytest.raises(FormatError) as e:
        WearSession.open(bad)
    msg = str(e.value)
    assert "sbj_0.csv" in msg and f"row {row}" in msg and words in msg


def test_wear_bad_split_json(wear_csv, tmp_path):
    (tmp_path / "sbj_0.csv").write_bytes(wear_csv.read_bytes())
    (tmp_path / "wear_split_1.json").write_text('{"database": {\n  "sbj_0": [}\n')
    with pytest.raises(FormatError, match=r"wear_split_1\.json: row 2: bad JSON"):
        open_session(tmp_path / "sbj_0.csv")


@pytest.mark.parametrize(
    ("fn", "row", "words"),
    [
        (lambda ls: [ls[0].replace("3DMGX1_3337_Accel_Z", "X"), *ls[1:]], 1, "3DMGX1_3337_Accel_Z"),
        (lambda ls: [*ls[:10], _replace_cell(ls[10], 5, "abc"), *ls[11:]], 11, "number"),
        (lambda ls: [*ls[:20], _replace_cell(ls[20], 0, "1234.0"), *ls[21:]], 21, "increase"),
        (lambda ls: [*ls[:30], ls[30][:50], *ls[31:]], 31, "fields"),
    ],
)
def test_cmummac_malformed(cmu_csv, tmp_path, fn, row, words):
    bad = _edit(cmu_csv, tmp_path / "S07_Brownie.csv", fn)
    with pytest.raises(FormatError) as e:
        CmuMmacSession.open(bad)
    msg = str(e.value)
    assert "S07_Brownie.csv" in msg and f"row {row}" in msg and words in msg


def test_cmummac_bad_keysteps_and_rate(cmu_csv, tmp_path):
    (tmp_path / "steps.csv").write_text('0,1,"1 crack egg"\n1,x,"2 stir"\n')
    with pytest.raises(FormatError, match=r"steps\.csv: row 2"):
        CmuMmacSession.open(cmu_csv, labels=tmp_path / "steps.csv")
    ms = _edit(
        cmu_csv,
        tmp_path / "S02_ms.csv",
        lambda ls: (
            [ls[0]] + [_replace_cell(x, 0, str(1000.0 * i)) for i, x in enumerate(ls[1:-1])] + [""]
        ),
    )
    with pytest.raises(FormatError, match="seconds"):
        CmuMmacSession.open(ms)


def test_release_malformed(wear_dir, tmp_path):
    root = build_release(tmp_path, wear_dir / "right_wrist_0_10.csv")
    labels = root / "cav_label" / "train_finetune" / "labels_1.json"
    good = labels.read_text()
    labels.write_text(good[:-3])
    with pytest.raises(FormatError, match=r"labels_1\.json: row 1: bad JSON"):
        ReleaseClipDataset(root)
    labels.write_text(good.replace('"a1"', '"zz"'))
    with pytest.raises(FormatError, match=r"'zz' is not in class_labels_indices\.csv"):
        ReleaseClipDataset(root)
    labels.write_text(good)
    clip = root / "imu" / "wear_clip.csv"
    _edit(clip, clip, lambda ls: [*ls[:3], _replace_cell(ls[3], 2, "nan?"), *ls[4:]])
    ds = ReleaseClipDataset(root)
    with pytest.raises(FormatError) as e:
        ds[0]
    assert "wear_clip.csv: row 4" in str(e.value)


# -- rates, clip shapes and label vocabularies -----------------------------------------------------


def _cmu_with_times(src: Path, dst: Path, times) -> Path:
    """``src`` with its timestamp column replaced by ``times`` (one per data row)."""
    return _edit(
        src,
        dst,
        lambda ls: (
            [ls[0]]
            + [_replace_cell(x, 0, f"{t:.6f}") for x, t in zip(ls[1:-1], times, strict=True)]
            + [""]
        ),
    )


@pytest.mark.parametrize("rate", [60.0, 100.0, 15.0, 1000.0])
def test_cmummac_rate_other_than_30hz_is_one_line(cmu_csv, tmp_path, rate):
    bad = _cmu_with_times(cmu_csv, tmp_path / "S07_Brownie.csv", 1234.5 + np.arange(90) / rate)
    with pytest.raises(FormatError) as e:
        CmuMmacSession.open(bad)
    msg = str(e.value)
    assert "\n" not in msg and "S07_Brownie.csv" in msg and "declared rate is 30/s" in msg
    assert f"give {rate:.4g} samples/s" in msg


def test_cmummac_30hz_with_jitter_and_dropped_rows_reads(cmu_csv, tmp_path):
    rng = np.random.default_rng(0)
    times = 1234.5 + (np.arange(90) + rng.uniform(-0.3, 0.3, 90)) / 30.0
    src = _cmu_with_times(cmu_csv, tmp_path / "jitter.csv", times)
    lines = src.read_text().splitlines()
    kept = [ln for k, ln in enumerate(lines) if k == 0 or k % 4 != 2]  # a quarter of rows lost
    (tmp_path / "S07_Brownie.csv").write_text("\n".join(kept) + "\n")
    s = CmuMmacSession.open(tmp_path / "S07_Brownie.csv")
    assert len(s.imu["left_arm"].t) == len(kept) - 1 and s.imu["left_arm"].rate_hz == 30.0


def _clip_error(root: Path, clip: str, fn) -> str:
    path = root / "imu" / clip
    _edit(path, path, fn)
    ds = ReleaseClipDataset(root)
    with pytest.raises(FormatError) as e:
        ds[0 if clip == "wear_clip.csv" else 1]
    msg = str(e.value)
    assert "\n" not in msg and clip in msg
    return msg


@pytest.mark.parametrize(
    ("clip", "fn", "words"),
    [
        ("wear_clip.csv", lambda ls: [*ls[:200], ""], ["row 200", "ends after 199 data", "250"]),
        ("wear_clip.csv", lambda ls: [*ls[:-1], ls[5], ""], ["row 252", "251", "exactly 250"]),
        ("wear_clip.csv", lambda ls: [x + ",0" if x else x for x in ls], ["row 1", "15 columns"]),
        (
            "cmu_clip.csv",
            lambda ls: [*ls[:-1], ls[-2], ""],
            ["row 152", "data row 151", "exactly 150"],
        ),
        (
            "cmu_clip.csv",
            lambda ls: [",".join(x.split(",")[:-1]) if x else x for x in ls],
            ["row 1", "63 columns, expected 64"],
        ),
        (
            "cmu_clip.csv",
            lambda ls: [*ls[:60], _replace_cell(ls[60], 0, "1230.0"), *ls[61:]],
            ["row 61", "timestamp", "does not increase"],
        ),
        (
            "cmu_clip.csv",
            lambda ls: (
                [ls[0]]
                + [_replace_cell(x, 0, f"{k / 100:.6f}") for k, x in enumerate(ls[1:-1])]
                + [""]
            ),
            ["give 100 samples/s", "declared rate is 30/s"],
        ),
    ],
)
def test_release_clip_shape_and_timestamps(wear_dir, tmp_path, clip, fn, words):
    root = build_release(tmp_path, wear_dir / "right_wrist_0_10.csv")
    msg = _clip_error(root, clip, fn)
    for w in words:
        assert w in msg, msg


@pytest.mark.parametrize("label", ["jogging (sidestep)", "Jogging", "walking", "17"])
def test_wear_unknown_label_in_csv_names_row_and_label(wear_csv, tmp_path, label):
    bad = _edit(
        wear_csv,
        tmp_path / "sbj_0.csv",
        lambda ls: [*ls[:1233], _replace_cell(ls[1233], 13, label), *ls[1234:]],
    )
    with pytest.raises(FormatError) as e:
        WearSession.open(bad)
    msg = str(e.value)
    assert "\n" not in msg and "sbj_0.csv: row 1234" in msg and repr(label) in msg
    # with a split JSON beside it, the CSV's label column is still checked
    split = wear_csv.parent / "wear_split_1.json"
    (tmp_path / "wear_split_1.json").write_bytes(split.read_bytes())
    with pytest.raises(FormatError, match="row 1234"):
        WearSession.open(bad)


def test_wear_null_labels_in_any_spelling_read(wear_csv, tmp_path):
    nulls = ["null", "NULL", "", "None", "nan"]
    ok = _edit(
        wear_csv,
        tmp_path / "sbj_0.csv",
        lambda ls: (
            [ls[0]]
            + [_replace_cell(x, 13, nulls[k % 5]) if k < 100 else x for k, x in enumerate(ls[1:])]
        ),
    )
    s = WearSession.open(ok)
    assert all(seg.start_s >= 2.0 for seg in s.labels)  # the first 100 rows carry no label


def _split_doc(wear_csv: Path) -> dict:
    return json.loads((wear_csv.parent / "wear_split_1.json").read_text())


@pytest.mark.parametrize(
    ("edit", "words"),
    [
        (
            lambda d: d["database"]["sbj_0"]["annotations"][1].update(label="bench dips"),
            ["database.sbj_0.annotations[1]", "'bench dips'", "18 WEAR classes"],
        ),
        (
            lambda d: d["database"]["sbj_0"]["annotations"][0].update(label_id=12),
            ["database.sbj_0.annotations[0]", "label_id 12 does not match"],
        ),
        (
            lambda d: d["label_dict"].update({"push-ups": 0}),
            ["label_dict", "'push-ups' has id 0", "WEAR's is 10"],
        ),
        (
            lambda d: d["label_dict"].update({"walking": 18}),
            ["label_dict", "'walking' is not one of the 18 WEAR classes"],
        ),
        (lambda d: d.update(label_dict=["jogging"]), ["label_dict is not an object"]),
    ],
)
def test_wear_split_json_labels_must_be_wear_classes(wear_csv, tmp_path, edit, words):
    doc = _split_doc(wear_csv)
    assert doc["database"]["sbj_0"]["annotations"][0]["label_id"] != 12
    edit(doc)
    (tmp_path / "sbj_0.csv").write_bytes(wear_csv.read_bytes())
    (tmp_path / "wear_split_1.json").write_text(json.dumps(doc))
    with pytest.raises(FormatError) as e:
        open_session(tmp_path / "sbj_0.csv")
    msg = str(e.value)
    assert "\n" not in msg and "wear_split_1.json" in msg
    for w in words:
        assert w in msg, msg
