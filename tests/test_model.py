"""Losses against slow references; encoder equivalences the speed-ups rely on."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from elcrec.config import ConfigError, ModelConfig, RunConfig
from elcrec.models import Batch
from elcrec.models.elcrec import (
    ELCRec,
    FrequencyFilter,
    LearnableClusters,
    SASRec,
    SoftmaxCrossEntropy,
    attention,
    dropout,
    info_nce,
    next_item_bce,
    next_item_ce,
    next_item_sampled_softmax,
)


def test_cluster_loss_matches_loops():
    torch.manual_seed(0)
    b, k, d = 5, 4, 3
    z = F.normalize(torch.randn(b, d), dim=1)
    for push_norm, denom in (("all_pairs", k * k), ("off_diagonal", k * (k - 1))):
        clusters = LearnableClusters(k, d, push_norm)
        c = clusters.centers.detach()
        pull = sum(float(((z[u] - c[j]) ** 2).sum()) for u in range(b) for j in range(k)) / (b * k)
        push = sum(float(((c[i] - c[j]) ** 2).sum()) for i in range(k) for j in range(k)) / denom
        assert float(clusters.loss(z).detach()) == pytest.approx(pull - push, abs=1e-5)


def test_cluster_loss_identity_from_method_md():
    """mean_j ||h - c_j||^2 = ||h - c_bar||^2 + (1/k) sum_j ||c_j - c_bar||^2."""
    torch.manual_seed(1)
    clusters = LearnableClusters(6, 4)
    c = clusters.centers.detach()
    h = F.normalize(torch.randn(1, 4), dim=1)
    c_bar = c.mean(0)
    lhs = LearnableClusters.sq_distances(h, c).mean()
    rhs = ((h - c_bar) ** 2).sum() + ((c - c_bar) ** 2).sum(1).mean()
    assert float(lhs) == pytest.approx(float(rhs), abs=1e-5)


def test_assignment_is_nearest_center():
    clusters = LearnableClusters(3, 2)
    with torch.no_grad():
        clusters.centers.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]]))
    _, idx = clusters(torch.tensor([[2.0, 0.1], [0.1, 3.0], [-5.0, -1.0]]))
    assert idx.tolist() == [0, 1, 2]


def test_info_nce_matches_explicit_formula():
    torch.manual_seed(2)
    n, d, tau = 4, 3, 0.5
    a, b = torch.randn(n, d), torch.randn(n, d)
    views = torch.cat([a, b])
    total = 0.0
    for i in range(2 * n):
        pos = (i + n) % (2 * n)
        num = math.exp(float(views[i] @ views[pos]) / tau)
        den = sum(math.exp(float(views[i] @ views[j]) / tau) for j in range(2 * n) if j != i)
        total += -math.log(num / den)
    assert float(info_nce(a, b, tau)) == pytest.approx(total / (2 * n), rel=1e-5)


def test_cosine_info_nce_is_the_dot_product_of_unit_vectors_and_ignores_scale():
    torch.manual_seed(3)
    a, b = torch.randn(5, 4), torch.randn(5, 4)
    unit = info_nce(F.normalize(a, dim=1), F.normalize(b, dim=1), 0.2)
    assert float(info_nce(a, b, 0.2, cosine=True)) == pytest.approx(float(unit), rel=1e-6)
    scaled = info_nce(a * 7.0, b * (torch.rand(5, 1) * 3 + 0.1), 0.2, cosine=True)
    assert float(scaled) == pytest.approx(float(unit), rel=1e-5)
    # The dot product is not scale-free: larger outputs, sharper logits.
    assert float(info_nce(a * 7.0, b * 7.0, 0.2)) != pytest.approx(float(info_nce(a, b, 0.2)))


def test_last_position_representation_is_the_scoring_vector():
    torch.manual_seed(6)
    cfg = ModelConfig(pooling="last", seq_cl_repr="last", n_clusters=2)
    model = ELCRec(20, 6, cfg).eval()
    items = torch.tensor([[0, 0, 3, 4, 5, 6], [0, 0, 0, 1, 2, 3]])
    with torch.no_grad():
        h = model.encode(items)
        assert torch.allclose(model.pool(h, items), model.user_vectors(items), atol=1e-5)
        assert torch.allclose(model._seq_repr(h, items), h[:, -1])


def test_next_item_bce_matches_loop():
    torch.manual_seed(3)
    h = torch.randn(2, 3, 4)
    emb = torch.randn(6, 4)
    pos = torch.tensor([[0, 2, 3], [1, 4, 5]])
    neg = torch.tensor([[0, 5, 1], [2, 3, 1]])
    terms = []
    for r in range(2):
        for t in range(3):
            if pos[r, t] > 0:
                sp = float(h[r, t] @ emb[pos[r, t]])
                sn = float(h[r, t] @ emb[neg[r, t]])
                terms.append(
                    -math.log(1 / (1 + math.exp(-sp))) - math.log(1 - 1 / (1 + math.exp(-sn)))
                )
    assert float(next_item_bce(h, emb, pos, neg)) == pytest.approx(
        sum(terms) / len(terms), rel=1e-5
    )


def _softmax_nll(scores: dict, target) -> float:
    """-log softmax of ``target`` among the items in ``scores`` (plain Python)."""
    z = sum(math.exp(v) for v in scores.values())
    return -math.log(math.exp(scores[target]) / z)


def test_next_item_ce_matches_loop_over_the_catalogue():
    torch.manual_seed(4)
    h = torch.randn(2, 3, 4)
    emb = torch.randn(6, 4)  # row 0 = padding, items 1..5
    pos = torch.tensor([[0, 2, 3], [1, 4, 5]])
    terms = []
    for r in range(2):
        for t in range(3):
            if pos[r, t] > 0:
                scores = {i: float(h[r, t] @ emb[i]) for i in range(1, 6)}  # never padding
                terms.append(_softmax_nll(scores, int(pos[r, t])))
    expected = sum(terms) / len(terms)
    assert float(next_item_ce(h, emb, pos)) == pytest.approx(expected, rel=1e-5)


def test_sampled_softmax_matches_loop_and_ignores_the_target_among_negatives():
    torch.manual_seed(5)
    h = torch.randn(2, 2, 4)
    emb = torch.randn(7, 4)
    pos = torch.tensor([[0, 2], [3, 6]])
    negatives = torch.tensor([1, 3, 5])  # 3 is also a target: ignored for that row only
    terms = []
    for r in range(2):
        for t in range(2):
            target = int(pos[r, t])
            if target > 0:
                scores = {("neg", n): float(h[r, t] @ emb[n]) for n in (1, 3, 5) if n != target}
                scores["pos"] = float(h[r, t] @ emb[target])
                terms.append(_softmax_nll(scores, "pos"))
    got = next_item_sampled_softmax(h, emb, pos, negatives)
    assert float(got) == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_log_q_correction_matches_loop():
    torch.manual_seed(6)
    h, emb = torch.randn(2, 2, 4), torch.randn(7, 4)
    pos = torch.tensor([[0, 2], [3, 6]])
    negatives = torch.tensor([1, 3, 5, 5])
    log_q = torch.randn(7)
    terms = []
    for r in range(2):
        for t in range(2):
            target = int(pos[r, t])
            if target > 0:
                scores = {
                    ("neg", j): float(h[r, t] @ emb[n] - log_q[n])
                    for j, n in enumerate(negatives.tolist())
                    if n != target
                }
                scores["pos"] = float(h[r, t] @ emb[target] - log_q[target])
                terms.append(_softmax_nll(scores, "pos"))
    got = next_item_sampled_softmax(h, emb, pos, negatives, log_q)
    assert float(got) == pytest.approx(sum(terms) / len(terms), rel=1e-5)


def test_log_q_corrected_sampled_softmax_estimates_the_full_softmax_gradient():
    """Negatives drawn by popularity: with the log-Q correction the gradient
    approaches the full softmax's as the draws grow; without it, it is biased
    toward pushing popular items down."""
    torch.manual_seed(7)
    n_items, d = 20, 8
    emb = torch.randn(n_items + 1, d)
    p = 1.0 / torch.arange(1, n_items + 1, dtype=torch.float64)
    p = torch.cat([torch.zeros(1, dtype=torch.float64), p / p.sum()]).float()
    pos = torch.tensor([[4]])

    def grad(loss_fn):
        h = torch.randn(1, 1, d, generator=torch.Generator().manual_seed(0)).requires_grad_()
        loss_fn(h).backward()
        return h.grad.reshape(-1)

    full = grad(lambda h: next_item_ce(h, emb, pos))
    n = 50_000
    negatives = torch.multinomial(
        p, n, replacement=True, generator=torch.Generator().manual_seed(1)
    )
    log_q = (n * p).log()
    corrected = grad(lambda h: next_item_sampled_softmax(h, emb, pos, negatives, log_q))
    plain = grad(lambda h: next_item_sampled_softmax(h, emb, pos, negatives))
    # measured: 1.0 % off corrected, 9.8 % uncorrected
    assert (corrected - full).norm() < 0.03 * full.norm()
    assert (plain - full).norm() > 0.06 * full.norm()


def test_candidates_expected_counts_include_the_batch_targets():
    cfg = ModelConfig(
        variant="sasrec", loss="sampled_softmax", n_negatives=5, in_batch_negatives=True
    )
    model = ELCRec(4, 3, cfg)
    model.set_item_counts(torch.tensor([0, 1, 1, 2, 0]))  # item 4 is never a target
    pos = torch.tensor([[0, 1, 3], [0, 0, 3]])
    negatives, log_q = model._candidates(pos, 4)
    assert negatives[5:].tolist() == [1, 3, 3] and len(negatives) == 8
    # uniform: 5 draws over 4 items; the batch: 3 targets drawn from the target frequencies
    expected = torch.tensor([0.0, 5 / 4 + 3 / 4, 5 / 4 + 3 / 4, 5 / 4 + 6 / 4, 5 / 4])
    torch.testing.assert_close(log_q[1:], expected[1:].log())
    model.cfg.negative_sampler = "popularity"
    negatives, _ = model._candidates(pos, 4)
    assert set(negatives[:5].tolist()) <= {1, 2, 3}  # never an item that is not a target


@pytest.mark.parametrize(
    "loss, options",
    [
        ("bce", {}),
        ("ce", {}),
        ("sampled_softmax", {}),
        ("sampled_softmax", {"negative_sampler": "popularity", "in_batch_negatives": True}),
    ],
)
def test_every_next_item_loss_trains_the_model(loss, options):
    cfg = ModelConfig(variant="sasrec", loss=loss, n_negatives=8, dropout=0.0, **options)
    torch.manual_seed(0)
    model = ELCRec(20, 5, cfg)
    model.set_item_counts(torch.cat([torch.zeros(1), torch.ones(20)]))
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    items = torch.tensor([[0, 1, 2, 3, 4], [0, 0, 5, 6, 7]])
    pos = torch.tensor([[0, 2, 3, 4, 5], [0, 0, 6, 7, 8]])
    neg = torch.where(pos > 0, 15, 0)  # an item that is never a target
    first = None
    for _ in range(30):
        out = model(Batch(items, pos, neg))
        first = first if first is not None else float(out["next_item"].detach())
        opt.zero_grad()
        out["total"].backward()
        opt.step()
    assert float(out["next_item"].detach()) < 0.5 * first


@pytest.mark.parametrize("positions", ["from_end", "from_start"])
@pytest.mark.parametrize("layers", [1, 3])
def test_padding_width_does_not_change_real_outputs(layers, positions):
    """Bucketed batches (padded to their own width) equal batches padded to T."""
    torch.manual_seed(4)
    enc = SASRec(30, 12, ModelConfig(n_layers=layers, positions=positions)).eval()
    items = torch.tensor([[0, 0, 5, 7, 9], [1, 2, 3, 4, 5]])
    wide = torch.cat([torch.zeros(2, 7, dtype=torch.long), items], dim=1)
    with torch.no_grad():
        narrow_out, wide_out = enc(items), enc(wide)[:, 7:]
        real = items > 0
        assert torch.allclose(narrow_out[real], wide_out[real], atol=1e-5)
        assert torch.allclose(enc(items, last_only=True)[:, -1], narrow_out[:, -1], atol=1e-5)


@pytest.mark.parametrize("layers", [1, 2])
def test_positions_from_start_make_every_position_a_prefix_sample(layers):
    """RecBole trains on one sample per prefix, scored at its last item.  With
    positions counted from the start and causal attention, the output at every
    position of one window is that prefix sample's last output; with positions
    counted from the end it is not (the prefix's last item sits at position T-1)."""
    torch.manual_seed(5)
    seq = [4, 9, 2, 7, 7, 3]
    for positions, same in (("from_start", True), ("from_end", False)):
        enc = SASRec(10, 8, ModelConfig(n_layers=layers, positions=positions)).eval()
        with torch.no_grad():
            window = enc(torch.tensor([[0, 0] + seq]))[0, 2:]
            for t in range(len(seq)):
                prefix = torch.tensor([[0] * (8 - t - 1) + seq[: t + 1]])
                last = enc(prefix)[0, -1]
                assert torch.allclose(window[t], last, atol=1e-5) == (same or t == len(seq) - 1)
    # The virtual padding keys assume positions from the end.
    with pytest.raises(ConfigError, match="positions"):
        RunConfig().replace(**{"model.positions": "from_start", "model.pad_approx": True})


@pytest.mark.parametrize("variant", ["sasrec", "backbone", "icl", "elcm", "full"])
@pytest.mark.parametrize("pooling", ["masked_mean", "mean_padded", "concat", "last"])
@pytest.mark.parametrize("seq_cl_repr", ["mean", "concat", "last"])
def test_every_variant_and_pooling_gives_finite_gradients(variant, pooling, seq_cl_repr):
    torch.manual_seed(5)
    cfg = ModelConfig(
        variant=variant, pooling=pooling, n_clusters=4, fusion="concat", seq_cl_repr=seq_cl_repr
    )
    cfg.encoder_passes = 5
    model = ELCRec(20, 6, cfg)
    items = torch.tensor([[0, 0, 3, 4, 5, 6], [0, 1, 2, 3, 4, 5]])
    pos = torch.tensor([[0, 0, 4, 5, 6, 7], [0, 2, 3, 4, 5, 6]])
    neg = torch.tensor([[0, 0, 9, 9, 9, 9], [0, 8, 8, 8, 8, 8]])
    views = torch.tensor(
        [[0, 0, 0, 0, 3, 4], [0, 1, 0, 3, 0, 5], [0, 0, 0, 0, 0, 6], [0, 2, 1, 3, 4, 5]]
    )
    out = model(Batch(items, pos, neg, views))
    out["total"].backward()
    expected = {
        "sasrec": {"next_item"},
        "backbone": {"next_item", "seq_cl"},
        "icl": {"next_item", "seq_cl", "intent_cl"},
        "elcm": {"next_item", "seq_cl", "cluster"},
        "full": {"next_item", "seq_cl", "intent_cl", "cluster"},
    }[variant]
    assert set(out) - {"total"} == expected
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)


def test_pad_approx_is_exact_at_full_width_and_weights_cover_t():
    torch.manual_seed(6)
    t = 8
    exact = ELCRec(30, t, ModelConfig(pooling="mean_padded", seq_cl_repr="concat")).eval()
    approx = ELCRec(
        30, t, ModelConfig(pooling="mean_padded", seq_cl_repr="concat", pad_approx=True)
    )
    approx.load_state_dict(exact.state_dict())
    approx.eval()
    assert exact.width_for(3) == t and approx.width_for(3) == 4 and approx.width_for(t) == t
    # as_batch widens a 3-wide matrix to each model's width with leading padding
    three = np.array([[4, 5, 6]])
    assert exact.as_batch(three, "cpu").tolist() == [[0] * (t - 3) + [4, 5, 6]]
    assert approx.as_batch(three, "cpu").tolist() == [[0, 4, 5, 6]]
    # a batch holding a sequence of T-1 items is T wide: the approximation is exact
    items = torch.tensor([[0, 1, 2, 3, 4, 5, 6, 7], [0, 0, 0, 0, 0, 9, 8, 7]])
    with torch.no_grad():
        assert torch.allclose(
            exact.pool(exact.encode(items), items), approx.pool(approx.encode(items), items)
        )
        h = approx.encode(items)
        # weighted slots stand for exactly T positions
        assert float(approx._slot_weights(4, "cpu").sum()) == t
        narrow = items[:, -4:][1:]  # width 4: first column stands for positions 0..4
        rep = approx._seq_repr(approx.encode(narrow), narrow)
        col0 = approx.encode(narrow)[0, 0]
        assert rep.shape == (1, 4 * 64)
        assert torch.allclose(rep[0, :64], col0 * (t - 3) ** 0.5)
    assert h.shape == (2, t, 64)


def test_virtual_padding_reproduces_a_t_wide_batch_in_one_layer():
    """Layer 1: every column of a narrow batch, leading padding included, equals
    the same column of the batch padded to T (the authors' layout)."""
    torch.manual_seed(7)
    t = 10
    enc = SASRec(30, t, ModelConfig(n_layers=1)).eval()
    items = torch.tensor([[0, 0, 4, 5], [0, 1, 2, 3], [0, 0, 0, 9]])
    wide = torch.cat([torch.zeros(3, t - 4, dtype=torch.long), items], dim=1)
    with torch.no_grad():
        narrow = enc(items, virtual_pad=True)
        assert torch.allclose(narrow, enc(wide)[:, -4:], atol=1e-5)
        # without the virtual keys the padding columns differ, the real ones do not
        plain = enc(items)
        assert not torch.allclose(plain[:, 0], narrow[:, 0], atol=1e-3)
        assert torch.allclose(plain[items > 0], narrow[items > 0], atol=1e-5)
    deep = SASRec(30, t, ModelConfig(n_layers=2)).eval()
    with torch.no_grad():  # deeper layers: real positions still exact
        assert torch.allclose(
            deep(items, virtual_pad=True)[items > 0], deep(wide)[:, -4:][items > 0], atol=1e-5
        )


def test_learnable_clusters_recover_gaussian_blobs_from_mini_batches():
    from elcrec.evaluate import nmi
    from elcrec.models.elcrec import fit_clusters

    g = torch.Generator().manual_seed(0)
    k, dim = 8, 32
    true_centers = F.normalize(torch.randn(k, dim, generator=g), dim=1)
    labels = torch.randint(0, k, (4000,), generator=g)
    z = F.normalize(true_centers[labels] + 0.1 * torch.randn(4000, dim, generator=g), dim=1)
    clusters = fit_clusters(LearnableClusters(k, dim, pull="nearest"), z, epochs=3, seed=1)
    assert nmi(labels.numpy(), clusters.assign(z).numpy()) >= 0.9
    # Mini-batches only: the loss of one batch never looks beyond that batch.
    norms = clusters.centers.detach().norm(dim=1)
    assert torch.allclose(norms, torch.ones(k), atol=1e-5)


def test_sinkhorn_matches_a_loop_and_balances_the_batch():
    torch.manual_seed(6)
    scores = torch.randn(12, 4)
    got = LearnableClusters.sinkhorn(scores, eps=0.5, iters=3)
    # Slow reference: the same alternating normalisation, element by element.
    b, k = 12, 4
    m = float(scores.max())
    q = [[math.exp((float(scores[i, j]) - m) / 0.5) for j in range(k)] for i in range(b)]
    total = sum(map(sum, q))
    q = [[v / total for v in row] for row in q]
    for _ in range(3):
        cols = [sum(q[i][j] for i in range(b)) for j in range(k)]
        q = [[q[i][j] / cols[j] / k for j in range(k)] for i in range(b)]
        rows = [sum(r) for r in q]
        q = [[q[i][j] / rows[i] / b for j in range(k)] for i in range(b)]
    expected = torch.tensor(q) * b
    assert torch.allclose(got, expected, atol=1e-6)
    assert torch.allclose(got.sum(dim=1), torch.ones(b), atol=1e-6)
    # Even when every sample prefers center 0, enough iterations spread the batch.
    skewed = torch.zeros(40, 4)
    skewed[:, 0] = 1.0
    skewed += 0.01 * torch.randn(40, 4)
    q = LearnableClusters.sinkhorn(skewed, eps=0.5, iters=50)
    assert torch.allclose(q.sum(dim=0), torch.full((4,), 10.0), atol=0.1)


def test_sinkhorn_pull_gives_the_centers_a_gradient():
    torch.manual_seed(7)
    clusters = LearnableClusters(8, 16, pull="sinkhorn")
    z = F.normalize(torch.randn(256, 16), dim=1)
    loss, _ = clusters(z)
    loss.backward()
    assert torch.isfinite(loss) and clusters.centers.grad.abs().sum() > 0


@pytest.mark.parametrize("loss", ["bce", "ce"])
def test_bf16_autocast_step_is_close_to_float32(loss):
    """train.precision = bf16: the step's losses and gradients within bf16's
    resolution of float32's (8 bits of mantissa: about 1 % here)."""
    cfg = ModelConfig(loss=loss, dropout=0.0, n_clusters=4, n_layers=2)
    torch.manual_seed(0)
    model = ELCRec(30, 8, cfg)
    items = torch.randint(1, 31, (16, 8))
    pos = torch.randint(1, 31, (16, 8))
    views = torch.randint(0, 31, (32, 8))
    batch = Batch(items, pos, torch.randint(1, 31, (16, 8)), views)

    def step(bf16):
        torch.manual_seed(1)
        model.zero_grad()
        with torch.autocast("cpu", torch.bfloat16, enabled=bf16):
            out = model(batch)
        out["total"].backward()
        grads = torch.cat([p.grad.reshape(-1) for p in model.parameters() if p.grad is not None])
        return {k: float(v.detach()) for k, v in out.items()}, grads

    (full, g32), (half, g16) = step(False), step(True)
    for key in full:
        assert half[key] == pytest.approx(full[key], rel=0.02, abs=0.02), key
    assert (g16 - g32).norm() < 0.05 * g32.norm()


# --------------------------------------------------------------------------- #
# model.kernels = fused: the same model and loss, computed with fewer passes
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize("scale", [1.0, 60.0])
def test_fused_softmax_cross_entropy_matches_torch_value_and_gradient(scale):
    """Value and gradient of F.cross_entropy, also when logits are far apart
    (scale 60: most softmax entries underflow, targets among them)."""
    torch.manual_seed(3)
    logits = (torch.randn(9, 13, dtype=torch.float64) * scale).requires_grad_()
    target = torch.randint(0, 13, (9,))
    want = F.cross_entropy(logits, target)
    (want_grad,) = torch.autograd.grad(2.5 * want, logits)
    fused = logits.detach().clone().requires_grad_()
    got = SoftmaxCrossEntropy.apply(fused, target)
    (2.5 * got).backward()
    assert float(got.detach()) == pytest.approx(float(want.detach()), rel=1e-6)
    assert torch.allclose(fused.grad, want_grad, atol=1e-10)


def test_fused_dropout_keeps_1_minus_p_and_rescales():
    torch.manual_seed(4)
    x = torch.ones(200_000)
    y = dropout(x, 0.3, True, fused=True)
    kept = y > 0
    assert float(kept.float().mean()) == pytest.approx(0.7, abs=0.005)
    assert torch.allclose(y[kept], torch.full_like(y[kept], 1 / 0.7))
    assert dropout(x, 0.3, False, fused=True) is x  # evaluation: untouched


def test_fused_attention_is_torchs_without_dropout_and_unbiased_with_it():
    torch.manual_seed(5)
    q, k, v = (torch.randn(3, 2, 6, 4) for _ in range(3))
    mask = torch.zeros(3, 1, 6, 6).masked_fill_(torch.ones(6, 6).triu(1).bool(), -1e4)
    plain = F.scaled_dot_product_attention(q, k, v, attn_mask=mask)
    assert torch.allclose(attention(q, k, v, mask, 0.0, True, fused=True), plain, atol=1e-6)
    assert torch.allclose(attention(q, k, v, mask, 0.4, False, fused=True), plain, atol=1e-6)
    draws = torch.stack([attention(q, k, v, mask, 0.4, True, fused=True) for _ in range(4000)])
    assert torch.allclose(draws.mean(0), plain, atol=0.05)


@pytest.mark.parametrize("variant", ["sasrec", "intents"])
@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_fused_kernels_give_the_same_step_on_per_prefix_batches(loss, variant):
    """Per-prefix batches (targets in the last column only): the fused step
    encodes the last position alone in the last block, yet its loss and
    gradients are torch's (no dropout, so no random draws differ).  So does
    the view-free intents variant pooling the last output, and an empty
    input (train.samples = window) is scored from its raw output on both."""
    torch.manual_seed(0)
    items = torch.randint(1, 31, (16, 8))
    items[:5, :3] = 0  # shorter prefixes, left-padded
    items[5] = 0  # an empty input: a window's first target
    pos = torch.zeros(16, 8, dtype=torch.long)
    pos[:, -1] = torch.randint(1, 31, (16,))
    neg = torch.randint(1, 31, (16, 8))

    def step(kernels):
        cfg = ModelConfig(
            variant=variant, loss=loss, dropout=0.0, n_layers=2, kernels=kernels, pooling="last"
        )
        torch.manual_seed(1)
        model = ELCRec(30, 8, cfg)
        out = model(Batch(items, pos, neg, last_only=True))
        out["total"].backward()
        grads = {n: p.grad for n, p in model.named_parameters() if p.grad is not None}
        return float(out["total"].detach()), grads

    (want, want_grad), (got, got_grad) = step("torch"), step("fused")
    assert got == pytest.approx(want, rel=1e-6)
    assert got_grad.keys() == want_grad.keys()
    # float32 rounding only: the two paths sum in different orders, and on a
    # processor with AVX-512 the kernels differ by up to 4e-7 on gradients
    # near 1.5 (a wrong gradient is off by orders of magnitude more)
    for name in want_grad:
        assert torch.allclose(got_grad[name], want_grad[name], rtol=1e-5, atol=1e-6), name


def test_intents_variant_contrasts_each_sample_with_its_center_without_views():
    """variant = intents: the cluster loss and an InfoNCE between each
    sample's own pooled output and its nearest center; no views are asked
    for, and the next-item loss is the plain model's."""
    torch.manual_seed(0)
    items = torch.randint(1, 31, (12, 6))
    items[:4, :2] = 0
    pos = torch.zeros(12, 6, dtype=torch.long)
    pos[:, -1] = torch.randint(1, 31, (12,))
    cfg = ModelConfig(variant="intents", dropout=0.0, n_clusters=4, pooling="last", loss="ce")
    model = ELCRec(30, 6, cfg)
    assert model.uses_intents and not model.wants_views
    with torch.no_grad():
        out = model(Batch(items, pos, pos, None, last_only=True))
    assert set(out) == {"next_item", "cluster", "intent_cl", "total"}
    with torch.no_grad():
        h = model.encoder(items)[:, -1]  # every input ends with an item
        z = F.normalize(h, dim=1)
        c = model.clusters.centers
        nearest = torch.cdist(z, c).argmin(dim=1)
        # InfoNCE over the 2n vectors [h; c[nearest]], each row's positive its pair
        both = torch.cat([h, c[nearest]])
        sim = both @ both.T / cfg.temperature
        sim.fill_diagonal_(float("-inf"))
        n = len(h)
        target = torch.cat([torch.arange(n, 2 * n), torch.arange(n)])
        want = F.cross_entropy(sim, target)
    assert float(out["intent_cl"]) == pytest.approx(float(want), rel=1e-5)
    plain_cfg = ModelConfig(variant="sasrec", dropout=0.0, n_clusters=4, pooling="last", loss="ce")
    plain = ELCRec(30, 6, plain_cfg)
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        got = plain(Batch(items, pos, pos, None, last_only=True))["next_item"]
    assert float(got) == pytest.approx(float(out["next_item"]), rel=1e-6)
    total = out["next_item"] + cfg.alpha * out["cluster"] + cfg.intent_cl_weight * out["intent_cl"]
    assert float(out["total"]) == pytest.approx(float(total), rel=1e-6)


def _bsarec_filter_reference(x, c, beta2):
    """BSARec's frequency branch before its dropout and LayerNorm, as its paper
    writes it: rfft along positions, the frequencies from c // 2 + 1 on zeroed,
    irfft; the rest of the signal scaled by beta^2."""
    spectrum = torch.fft.rfft(x, dim=1, norm="ortho")
    spectrum[:, c // 2 + 1 :, :] = 0
    low = torch.fft.irfft(spectrum, n=x.shape[1], dim=1, norm="ortho")
    return low + beta2 * (x - low)


@pytest.mark.parametrize("length,c", [(50, 5), (50, 1), (7, 3), (8, 9), (12, 40)])
def test_frequency_filter_is_the_fft_low_pass_plus_scaled_high_pass(length, c):
    torch.manual_seed(6)
    filt = FrequencyFilter(16, c, dropout=0.5, fused=False).eval()
    x = torch.randn(3, length, 16, dtype=torch.float64)
    beta2 = filt.sqrt_beta.detach().double() ** 2
    expected = _bsarec_filter_reference(x, c, beta2)
    got = filt.low_pass(x.float()).double()
    got = got + beta2 * (x - got)
    assert torch.allclose(got, expected, atol=1e-5)
    # and the whole branch: residual, then LayerNorm (dropout off in eval)
    out = filt(x.float())
    assert torch.allclose(out, F.layer_norm(x + expected, (16,), eps=1e-12).float(), atol=1e-4)


def test_frequency_filter_on_hand_made_signals():
    """A constant sequence is all low frequency: it passes unchanged.  The
    fastest alternation (+1, -1, ...) is all high frequency: it is scaled by
    beta^2.  c // 2 + 1 frequencies are kept: with c = 5, a period-12 cosine
    (frequency 4 of length 48) is cut, a period-24 one (frequency 2) kept."""
    filt = FrequencyFilter(2, 5, dropout=0.0, fused=False)
    n = 48
    t = torch.arange(n, dtype=torch.float32)
    constant = torch.full((1, n, 2), 3.0)
    alternating = torch.stack([(-1.0) ** t, 2 * (-1.0) ** t], dim=-1)[None]
    slow, fast = torch.cos(2 * math.pi * 2 * t / n), torch.cos(2 * math.pi * 4 * t / n)
    with torch.no_grad():
        assert torch.allclose(filt.low_pass(constant), constant, atol=1e-5)
        assert torch.allclose(filt.low_pass(alternating), torch.zeros_like(alternating), atol=1e-5)
        assert torch.allclose(filt.low_pass(slow[None, :, None]), slow[None, :, None], atol=1e-5)
        assert filt.low_pass(fast[None, :, None]).abs().max() < 1e-5


def test_bsarec_encoder_pads_to_t_and_at_alpha_zero_is_sasrec():
    """Every sequence is left-padded to T inside the encoder, so the output
    does not depend on the batch's width; last_only gives the last output;
    with filter_alpha = 0 the blocks are SASRec's (the filter's weights unused)."""
    torch.manual_seed(7)
    cfg = ModelConfig(n_layers=2, n_heads=1, encoder="bsarec", filter_c=3, filter_alpha=0.7)
    enc = SASRec(30, 12, cfg).eval()
    items = torch.tensor([[0, 0, 5, 7, 9], [1, 2, 3, 4, 5]])
    wide = torch.cat([torch.zeros(2, 7, dtype=torch.long), items], dim=1)
    with torch.no_grad():
        narrow = enc(items)
        assert narrow.shape == (2, 5, 64)
        assert torch.allclose(narrow, enc(wide)[:, 7:], atol=1e-6)
        assert torch.allclose(enc(items, last_only=True)[:, -1], narrow[:, -1], atol=1e-5)
        # the filter matters at alpha 0.7 ...
        plain = SASRec(30, 12, ModelConfig(n_layers=2, n_heads=1))
        plain.load_state_dict(enc.state_dict(), strict=False)
        assert not torch.allclose(plain.eval()(items)[:, -1], narrow[:, -1], atol=1e-3)
        # ... and not at all at 0
        zero = SASRec(
            30, 12, ModelConfig(n_layers=2, n_heads=1, encoder="bsarec", filter_alpha=0.0)
        )
        zero.load_state_dict(enc.state_dict())
        assert torch.allclose(zero.eval()(items)[:, -1], plain(items)[:, -1], atol=1e-5)


@pytest.mark.parametrize("encoder", ["sasrec", "bsarec"])
def test_an_empty_input_gives_finite_scores(encoder):
    """train.samples = window predicts a window's first item from nothing: a
    row of padding alone.  The additive mask is finite, so its attention is
    uniform over the padding rather than 0/0."""
    torch.manual_seed(0)
    enc = SASRec(30, 12, ModelConfig(n_layers=2, n_heads=1, encoder=encoder)).train()
    items = torch.tensor([[0] * 12, [0] * 9 + [3, 4, 5]])
    out = enc(items, last_only=True)[:, -1]
    assert torch.isfinite(out).all()
    out.sum().backward()
    assert all(torch.isfinite(p.grad).all() for p in enc.parameters() if p.grad is not None)


def test_an_empty_inputs_target_is_scored_from_the_raw_padding_output():
    """The released window pipeline trains a user's first item from padding
    alone: the loss must read the encoder's output there, not the zeros that
    pooling puts at padding positions (which would make it log N, gradient 0)."""
    torch.manual_seed(0)
    model = ELCRec(30, 6, ModelConfig(variant="full", dropout=0.0, n_clusters=4, loss="ce"))
    items = torch.zeros(1, 6, dtype=torch.long)
    pos = torch.zeros(1, 6, dtype=torch.long)
    pos[0, -1] = 7
    with torch.no_grad():
        out = model(Batch(items, pos, pos, None, last_only=True))
        logits = model.encoder(items)[:, -1] @ model.encoder.item_emb.weight[1:].T
    want = F.cross_entropy(logits, torch.tensor([6]))
    assert float(out["next_item"]) == pytest.approx(float(want), rel=1e-6)
    assert float(want) != pytest.approx(math.log(30), rel=1e-3)


def test_bsarec_needs_per_prefix_samples():
    with pytest.raises(ConfigError, match="prefixes"):
        RunConfig().replace(**{"model.encoder": "bsarec"})
    prefixes = {"model.encoder": "bsarec", "train.samples": "prefixes"}
    RunConfig().replace(**prefixes)
    RunConfig().replace(**{**prefixes, "train.samples": "window"})
    with pytest.raises(ConfigError, match="same_target"):
        RunConfig().replace(**{"train.samples": "window", "model.views": "same_target"})
    with pytest.raises(ConfigError, match="filter_alpha"):
        RunConfig().replace(**prefixes, **{"model.filter_alpha": 1.5})
