"""Metrics against hand-computed values and a slow, obviously-correct reference."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from elcrec.evaluate import metrics_from_ranks, nmi, rank_all, target_ranks


def slow_rank(scores, target, excluded, history_mask="neg_inf"):
    """Loop over the catalogue: how many other items score at least as high."""
    scores = list(scores)
    for j in excluded:
        scores[j] = -math.inf if history_mask == "neg_inf" else 0.0
    t = scores[target]
    return sum(1 for j, s in enumerate(scores) if j != target and s >= t)


def test_hand_computed_ranks_with_ties():
    scores = torch.tensor(
        [[0.9, 0.5, 0.5, 0.1, 0.7], [0.2, 0.2, 0.2, 0.2, 0.2], [0.3, 0.8, -0.4, 0.1, 0.0]]
    )
    targets = torch.tensor([1, 0, 2])
    # row 0: 0.9, 0.7 higher, 0.5 tied -> rank 3 (ties count against the target)
    # row 1: four ties -> rank 4; row 2: four items above -0.4 -> rank 4
    assert target_ranks(scores.clone(), targets).tolist() == [3, 4, 4]


def test_history_masking_neg_inf_vs_zero():
    scores = torch.tensor([[0.5, -0.2, -0.3, 0.9]])
    target = torch.tensor([1])
    history = (torch.tensor([0, 0]), torch.tensor([0, 3]))
    # minus infinity: only item 2 remains besides the target, and it scores lower
    assert target_ranks(scores.clone(), target, history, "neg_inf").tolist() == [0]
    # zero (the authors' code): history items score 0 > -0.2 and outrank the target
    assert target_ranks(scores.clone(), target, history, "zero").tolist() == [2]


def test_metrics_closed_form():
    ranks = np.array([0, 1, 4, 5, 19, 20])
    m = metrics_from_ranks(ranks)
    assert m["HR@5"] == pytest.approx(3 / 6)
    assert m["HR@10"] == pytest.approx(4 / 6)
    assert m["HR@20"] == pytest.approx(5 / 6)
    assert m["NDCG@5"] == pytest.approx((1 + 1 / math.log2(3) + 1 / math.log2(6)) / 6)
    ndcg20 = 1 + 1 / math.log2(3) + 1 / math.log2(6) + 1 / math.log2(7) + 1 / math.log2(21)
    assert m["NDCG@20"] == pytest.approx(ndcg20 / 6)
    assert m["MRR"] == pytest.approx(sum(1 / (r + 1) for r in ranks) / 6)


@settings(max_examples=60, deadline=None)
@given(st.integers(1, 6), st.integers(2, 30), st.integers(0, 10_000), st.booleans())
def test_target_ranks_match_slow_reference(rows, n_items, seed, coarse):
    rng = np.random.default_rng(seed)
    scores = rng.normal(size=(rows, n_items))
    if coarse:  # many exact ties
        scores = np.round(scores)
    targets = rng.integers(0, n_items, rows)
    hist = [(r, j) for r in range(rows) for j in range(n_items) if rng.random() < 0.2]
    for mode in ("neg_inf", "zero"):
        history = (
            torch.tensor([h[0] for h in hist], dtype=torch.long),
            torch.tensor([h[1] for h in hist], dtype=torch.long),
        )
        got = target_ranks(torch.tensor(scores), torch.tensor(targets), history, mode)
        want = [
            slow_rank(scores[r], targets[r], [j for rr, j in hist if rr == r], mode)
            for r in range(rows)
        ]
        assert got.tolist() == want


def test_rank_all_matches_slow_reference(tiny):
    from elcrec.data import Split, synthetic
    from elcrec.models.elcrec import ELCRec

    cfg = tiny()
    data = synthetic(120, 80, 4, seed=3)
    split = Split(data, cfg.data.max_len)
    torch.manual_seed(0)
    model = ELCRec(data.n_items, cfg.data.max_len, cfg.model).eval()
    for stage, cut in (("valid", 2), ("test", 1)):
        got = rank_all(model, split, stage, batch_size=32, score_chunk=7)
        for u in range(data.n_users):
            seq = data.sequence(u)
            history, target = seq[:-cut], seq[-cut]
            items = torch.tensor(history[-cfg.data.max_len :])[None]
            with torch.no_grad():
                scores = (model.encoder(items)[0, -1] @ model.encoder.item_emb.weight.T)[1:]
            want = slow_rank(scores.tolist(), target - 1, [i - 1 for i in history])
            assert got[u] == want, (stage, u)


def test_nmi_hand_values():
    assert nmi([0, 0, 1, 1], [1, 1, 0, 0]) == pytest.approx(1.0)
    assert nmi([0, 0, 1, 1], [0, 1, 0, 1]) == pytest.approx(0.0, abs=1e-12)
    # a = [0,0,1,1], b = [0,0,0,1]: MI = log 2 - (3/4) log 3 + ... computed by hand below
    a, b = [0, 0, 1, 1], [0, 0, 0, 1]
    p = {(0, 0): 0.5, (1, 0): 0.25, (1, 1): 0.25}
    pa, pb = {0: 0.5, 1: 0.5}, {0: 0.75, 1: 0.25}
    mi = sum(v * math.log(v / (pa[i] * pb[j])) for (i, j), v in p.items())
    ha = math.log(2)
    hb = -(0.75 * math.log(0.75) + 0.25 * math.log(0.25))
    assert nmi(a, b) == pytest.approx(mi / ((ha + hb) / 2))
