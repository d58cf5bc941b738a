"""The interval model's geometry and encoding: TIM's dense queries, query labels, NMS, the
distance-IoU loss, and what the model's attention rules guarantee (a query's answer depends on
its interval and the context, never on the other queries; a missing modality is ignored)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from evimae_stream.intervals import (
    crossings,
    decode,
    dense_queries,
    diou_loss,
    label_queries,
    nms,
    refine,
    target_offsets,
    tiou_matrix,
)
from evimae_stream.model.interval import IntervalConfig, IntervalEncoder, IntervalModel


def test_dense_queries_are_tims_half_overlapping_pyramid() -> None:
    q = dense_queries(0.25)
    # sizes 0.25 (starts every 0.125: 8), 0.5 (every 0.25: 4), 1.0 (every 0.5: 2)
    assert q.shape == (14, 2)
    np.testing.assert_allclose(q[:3], [[0.0, 0.25], [0.125, 0.375], [0.25, 0.5]])
    np.testing.assert_allclose(q[7], [0.875, 1.0])  # clipped to the context
    np.testing.assert_allclose(q[8:12], [[0, 0.5], [0.25, 0.75], [0.5, 1.0], [0.75, 1.0]])
    np.testing.assert_allclose(q[12:], [[0.0, 1.0], [0.5, 1.0]])
    with pytest.raises(ValueError, match="min_size"):
        dense_queries(1.5)


def test_queries_take_the_best_overlapping_segment_or_background() -> None:
    gt = np.array([[0.0, 0.4], [0.5, 1.0]])
    queries = np.array([[0.0, 0.5], [0.6, 0.9], [0.38, 0.52]])
    labels, targets, ious = label_queries(queries, gt, np.array([3, 7]), iou_threshold=0.25)
    # [0,.5] vs [0,.4]: .4/.5 = .8; [.6,.9] vs [.5,1]: .3/.5 = .6; [.38,.52]: .02/.52 with the
    # first and .02/.62 with the second, both below .25 -> background
    np.testing.assert_allclose(ious, [0.8, 0.6, 0.02 / 0.52], rtol=1e-5)
    assert labels.tolist() == [3, 7, -1]
    np.testing.assert_allclose(targets[:2], gt)
    none = label_queries(queries, np.zeros((0, 2)), np.zeros(0, np.int64), 0.25)[0]
    assert none.tolist() == [-1, -1, -1]


def test_nms_keeps_the_best_of_each_overlapping_group_per_class() -> None:
    segs = np.array([[0, 10], [1, 10], [1, 10], [20, 30], [5, 15]], dtype=float)
    scores = np.array([0.9, 0.8, 0.7, 0.6, 0.5])
    labels = np.array(["a", "a", "b", "a", "a"])
    # [1,10] vs [0,10]: tIoU 0.9 > 0.5, same class: dropped; the "b" one is another class;
    # [5,15] vs [0,10]: 5/15 = 0.33 <= 0.5: kept
    assert nms(segs, scores, labels, 0.5).tolist() == [0, 2, 3, 4]
    assert nms(segs, scores, labels, 0.3).tolist() == [0, 2, 3]
    assert nms(segs, scores, labels, 0.5, max_out=2).tolist() == [0, 2]
    assert tiou_matrix(segs[:1], segs[4:])[0, 0] == pytest.approx(1 / 3)


def test_offsets_decode_back_and_the_diou_loss_is_zero_only_on_the_target() -> None:
    queries = torch.tensor([[0.2, 0.4], [0.5, 0.9]])
    targets = torch.tensor([[0.1, 0.45], [0.6, 0.8]])
    off = target_offsets(queries, targets)
    torch.testing.assert_close(decode(queries, off), targets)
    assert diou_loss(off, off).abs().max() < 1e-6
    shifted = off + torch.tensor([[0.05, -0.05], [0.0, 0.1]])
    assert (diou_loss(shifted, off) > 0.05).all()
    far = torch.tensor([[-0.5, 0.6]])  # an interval entirely after its target: 1 - 0 + distance
    assert diou_loss(far, torch.tensor([[0.2, -0.1]]))[0] > 1.0


def _model(seed: int = 0) -> IntervalModel:
    torch.manual_seed(seed)
    return IntervalModel(IntervalConfig(feat_dim=6, num_classes=3, dim=8, heads=2, layers=2)).eval()


def _context(n: int = 5, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    feats = torch.randn(1, n, 2, 6, generator=g)
    present = torch.ones(1, n, 2, dtype=torch.bool)
    t = torch.linspace(0, 0.8, n)
    times = torch.stack((t, t + 0.2), dim=-1)[None]
    return feats, present, times


def test_the_interval_encoder_is_an_mlp_of_start_and_end() -> None:
    torch.manual_seed(0)
    enc = IntervalEncoder(32)
    a, b = enc(torch.tensor([[0.1, 0.3]])), enc(torch.tensor([[0.1, 0.6]]))
    assert a.shape == (1, 32) and not torch.allclose(a, b)
    # LayerNorm last: every encoding has zero mean and unit variance over its features
    assert a.mean().abs() < 1e-5 and (a.var(unbiased=False) - 1).abs() < 2e-2


@torch.no_grad()
def test_a_query_answer_depends_on_its_interval_not_on_the_other_queries() -> None:
    model = _model()
    feats, present, times = _context()
    q1 = torch.tensor([[[0.0, 0.5], [0.5, 1.0]]])
    logits, offsets, windows = model(feats, present, times, q1)
    assert logits.shape == (1, 2, 3) and offsets.shape == (1, 2, 2) and windows.shape == (1, 5, 3)
    assert ((offsets >= 0) & (offsets <= 1)).all()
    assert not torch.allclose(logits[0, 0], logits[0, 1])
    more = torch.tensor([[[0.0, 0.5], [0.2, 0.3], [0.9, 1.0]]])
    l2, o2, w2 = model(feats, present, times, more)
    torch.testing.assert_close(l2[0, 0], logits[0, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(o2[0, 0], offsets[0, 0], atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(w2, windows, atol=1e-5, rtol=1e-5)  # windows ignore the queries


@torch.no_grad()
def test_a_missing_modality_is_ignored_and_either_one_suffices() -> None:
    model = _model()
    feats, present, times = _context()
    q = torch.tensor([[[0.1, 0.6]]])
    present[:, :, 1] = False  # no video
    base = model(feats, present, times, q)[0]
    other = feats.clone()
    other[:, :, 1] = 100.0  # whatever the missing video holds
    torch.testing.assert_close(model(other, present, times, q)[0], base)
    changed = feats.clone()
    changed[:, :, 0] += 1.0  # the IMU it does have matters
    assert not torch.allclose(model(changed, present, times, q)[0], base)
    nothing = torch.zeros_like(present)
    assert torch.isfinite(model(feats, nothing, times, q)[0]).all()


def test_the_model_rejects_features_of_the_wrong_width() -> None:
    feats, present, times = _context()
    with pytest.raises(ValueError, match="features"):
        _model()(feats[..., :4], present, times, torch.zeros(1, 1, 2))
    with pytest.raises(ValueError, match="heads"):
        IntervalConfig(feat_dim=6, num_classes=3, dim=8, heads=3)


@torch.no_grad()
def test_a_window_answer_uses_the_modalities_present() -> None:
    model = _model()
    feats, present, times = _context()
    q = torch.tensor([[[0.1, 0.6]]])
    present[:, 3:] = False  # the last two windows are padding
    present[:, 1, 1] = False  # window 1 has no video
    w = model(feats, present, times, q)[2]
    assert (w[0, 3:] == 0).all()
    other = feats.clone()
    other[:, 1, 1] = 100.0  # whatever window 1's missing video holds
    torch.testing.assert_close(model(other, present, times, q)[2], w)


def test_crossings_interpolate_between_window_centres() -> None:
    centres = np.arange(8) * 0.5  # 0, 0.5, ..., 3.5
    evidence = np.array([0.1, 0.1, 0.3, 0.7, 0.9, 0.9, 0.4, 0.2])
    rises, falls = crossings(evidence, centres, 0.5)
    np.testing.assert_allclose(rises, [1.25])  # 0.3 -> 0.7 between 1.0 and 1.5: halfway
    np.testing.assert_allclose(falls, [2.5 + 0.5 * 0.4 / 0.5])  # 0.9 -> 0.4: 0.4 of the way


def test_refine_moves_loose_boundaries_to_the_true_change() -> None:
    # windows every 0.5 s; the class holds from 10.0 s to 22.0 s; its window scores change
    # there (0.05 outside, 0.95 inside); a detection from 8.3 to 24.6 s (the query pyramid's
    # grain) is snapped to within a quarter stride of the truth at both ends
    centres = np.arange(0.25, 40.0, 0.5)
    evidence = np.where((centres >= 10.0) & (centres < 22.0), 0.95, 0.05)
    s, e = refine((8.3, 24.6), evidence, centres)
    assert abs(s - 10.0) <= 0.125 and abs(e - 22.0) <= 0.125
    # an end with no crossing within half the detection's length stays where it is
    far = np.where(centres >= 10.0, 0.95, 0.05)
    assert refine((8.3, 24.6), far, centres) == pytest.approx((10.0, 24.6), abs=0.125)
    # the nearest change wins when the class comes back after a short break
    twice = np.where(((centres >= 10) & (centres < 16)) | ((centres >= 17) & (centres < 22)),
                     0.95, 0.05)  # fmt: skip
    s, e = refine((9.0, 21.0), twice, centres)
    assert abs(s - 10.0) <= 0.125 and abs(e - 22.0) <= 0.125
    # evidence that never rises leaves the detection as it was
    assert refine((8.3, 24.6), np.full(len(centres), 0.1), centres) == (8.3, 24.6)


def test_windows_are_labelled_by_the_segment_at_their_centre() -> None:
    from evimae_stream.metrics import ScoredSegment
    from training.interval_data import window_labels

    segs = [ScoredSegment(0.0, 4.0, "a"), ScoredSegment(4.0, 6.0, "null"),
            ScoredSegment(6.0, 9.0, "b")]  # fmt: skip
    centres = np.array([1.0, 3.99, 4.0, 5.0, 6.0, 8.9, 9.5])
    # "null" is no class of the head: background (−1), as is a centre no segment holds
    assert window_labels(segs, centres, ["a", "b"]).tolist() == [0, 0, -1, -1, 1, 1, -1]
