"""ELCRec: a SASRec encoder, learnable intent clusters (ELCM) and
intent-assisted contrastive learning (ICL), in one file.

Everything the forward pass and the losses need is here; the options are the
fields of :class:`elcrec.config.ModelConfig` (docs/method.md explains each).
"""

from __future__ import annotations

import faiss
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from elcrec import distributed
from elcrec.config import ConfigError, ModelConfig
from elcrec.models.base import Batch, EncodeUsers, SequentialModel

ATTENTION_MASK_VALUE = (
    -10000.0
)  # the authors' additive mask; finite, so fully masked rows stay finite


# --------------------------------------------------------------------------- #
# SASRec encoder (post-LN Transformer, docs/method.md section 2)
# --------------------------------------------------------------------------- #
def dropout(x: torch.Tensor, p: float, training: bool, fused: bool) -> torch.Tensor:
    """F.dropout, or (``fused``) the same with its mask drawn as uniform < 1 - p:
    torch's CPU bernoulli_ costs about four times the uniform draws."""
    if not fused or not training or p == 0.0:
        return F.dropout(x, p, training)
    keep = torch.rand(x.shape, device=x.device) >= p
    return x * keep * (1.0 / (1.0 - p))


def attention(q, k, v, attn_mask, p: float, training: bool, fused: bool) -> torch.Tensor:
    """Scaled dot-product attention with an additive mask and dropout on its
    weights.  torch's kernel drops with bernoulli_; ``fused`` writes the
    attention out (what the kernel does on CPU once it must drop) to draw the
    mask as ``dropout`` does."""
    if not fused or not training or p == 0.0:
        p = p if training else 0.0
        return F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask, dropout_p=p)
    scores = (q @ k.transpose(-2, -1)) * (q.shape[-1] ** -0.5) + attn_mask
    return dropout(scores.softmax(-1), p, training, fused) @ v


def low_pass_matrix(length: int, keep: int) -> torch.Tensor:
    """The (length x length) matrix P with P @ x = irfft of x's rfft along
    positions with every frequency from ``keep`` on set to zero (norm "ortho"):
    the low-pass filter is linear, so one small matrix product replaces the two
    FFTs, in any precision (torch's CPU FFT takes no bfloat16)."""
    eye = torch.eye(length, dtype=torch.float64)
    spectrum = torch.fft.rfft(eye, dim=0, norm="ortho")
    spectrum[keep:] = 0
    return torch.fft.irfft(spectrum, n=length, dim=0, norm="ortho").float()


class FrequencyFilter(nn.Module):
    """BSARec's inductive-bias branch (Shin et al., AAAI 2024): a sequence's
    ``c // 2 + 1`` lowest frequencies along positions, plus the rest scaled by
    a learned beta^2 per channel; then dropout, residual and LayerNorm, as its
    authors wrote it.  It mixes every position into every other."""

    def __init__(self, hidden: int, c: int, dropout: float, fused: bool):
        super().__init__()
        self.keep = c // 2 + 1
        self.sqrt_beta = nn.Parameter(torch.randn(1, 1, hidden))
        self.ln = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout, self.fused = dropout, fused
        self._low_pass: dict[int, torch.Tensor] = {}

    def low_pass(self, x: torch.Tensor) -> torch.Tensor:
        length = x.shape[1]
        if length not in self._low_pass:
            self._low_pass[length] = low_pass_matrix(length, self.keep)
        p = self._low_pass[length].to(device=x.device, dtype=x.dtype)
        return torch.einsum("ij,bjd->bid", p, x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        low = self.low_pass(x)
        y = low + self.sqrt_beta**2 * (x - low)
        return self.ln(x + dropout(y, self.dropout, self.training, self.fused))


class Block(nn.Module):
    def __init__(
        self,
        hidden: int,
        n_heads: int,
        dropout: float,
        fused: bool = False,
        frequency: FrequencyFilter | None = None,
        filter_alpha: float = 0.0,
    ):
        super().__init__()
        self.fused = fused
        self.n_heads = n_heads
        # BSARec: the filter's output weighted filter_alpha against attention's
        self.frequency = frequency
        self.filter_alpha = filter_alpha
        self.qkv = nn.Linear(hidden, 3 * hidden)
        self.attn_out = nn.Linear(hidden, hidden)
        self.ln1 = nn.LayerNorm(hidden, eps=1e-12)
        self.ffn_in = nn.Linear(hidden, 4 * hidden)
        self.ffn_out = nn.Linear(4 * hidden, hidden)
        self.ln2 = nn.LayerNorm(hidden, eps=1e-12)
        self.dropout = dropout

    def forward(self, x, attn_mask, last_only: bool = False, extra=None):
        """``last_only``: compute the output of the last position only (scoring
        needs no other), with the same keys and values, so the same result.
        ``extra`` (1 or B, n, d): hidden states of positions left of the batch
        that serve as keys and values only (see SASRec.forward, virtual_pad)."""
        b, length, d = x.shape
        heads, dh = self.n_heads, d // self.n_heads
        q, k, v = self.qkv(x).view(b, length, 3, heads, dh).unbind(2)
        q, k, v = (t.transpose(1, 2) for t in (q, k, v))
        if extra is not None:
            n = extra.shape[1]
            kv = F.linear(extra, self.qkv.weight[d:], self.qkv.bias[d:])
            ke, ve = kv.view(extra.shape[0], n, 2, heads, dh).unbind(2)
            k = torch.cat([ke.transpose(1, 2).expand(b, -1, -1, -1), k], dim=2)
            v = torch.cat([ve.transpose(1, 2).expand(b, -1, -1, -1), v], dim=2)
        filtered = None if self.frequency is None else self.frequency(x)
        if last_only:
            q, attn_mask, x = q[:, :, -1:], attn_mask[:, :, -1:], x[:, -1:]
            filtered = None if filtered is None else filtered[:, -1:]
        p, on, fused = self.dropout, self.training, self.fused
        a = attention(q, k, v, attn_mask, p, on, fused)
        a = a.transpose(1, 2).reshape(b, q.shape[2], d)
        x = self.ln1(x + dropout(self.attn_out(a), p, on, fused))
        if filtered is not None:
            x = self.filter_alpha * filtered + (1.0 - self.filter_alpha) * x
        h = self.ffn_out(F.gelu(self.ffn_in(x)))
        return self.ln2(x + dropout(h, p, on, fused))


class SASRec(nn.Module):
    """Item sequence (B, L), right-aligned, 0 = padding -> one vector per position (B, L, d)."""

    def __init__(self, n_items: int, max_len: int, cfg: ModelConfig):
        super().__init__()
        self.max_len = max_len
        self.item_emb = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=0)
        self.pos_emb = nn.Embedding(max_len, cfg.hidden)
        self.ln = nn.LayerNorm(cfg.hidden, eps=1e-12)
        self.dropout = cfg.dropout
        self.positions = cfg.positions
        self.fused = cfg.kernels == "fused"
        self.pad_to_max_len = cfg.encoder == "bsarec"  # the filter's frequencies span T
        self.blocks = nn.ModuleList(
            Block(
                cfg.hidden,
                cfg.n_heads,
                cfg.dropout,
                self.fused,
                frequency=FrequencyFilter(cfg.hidden, cfg.filter_c, cfg.dropout, self.fused)
                if cfg.encoder == "bsarec"
                else None,
                filter_alpha=cfg.filter_alpha,
            )
            for _ in range(cfg.n_layers)
        )
        self.apply(self._init)

    @staticmethod
    def _init(module: nn.Module) -> None:
        if isinstance(module, (nn.Linear, nn.Embedding)):
            nn.init.normal_(module.weight, std=0.02)
        if isinstance(module, nn.Linear) and module.bias is not None:
            nn.init.zeros_(module.bias)
        if isinstance(module, nn.LayerNorm):
            nn.init.ones_(module.weight)
            nn.init.zeros_(module.bias)

    def forward(
        self, items: torch.Tensor, last_only: bool = False, virtual_pad: bool = False
    ) -> torch.Tensor:
        """(B, L, d), or (B, 1, d) with ``last_only``.

        ``virtual_pad``: also give the T - L padding positions left of the batch
        as keys, as in a batch padded to T.  Only queries whose every key is
        masked (leading padding) see them: the authors' additive mask turns such
        a row into attention over all T keys.  Layer 1 gets their exact hidden
        states (one dropout draw shared by the rows); deeper layers, the
        leftmost column's (an approximation).
        """
        width = items.shape[1]  # the caller's; the outputs keep it
        if self.pad_to_max_len and width < self.max_len:
            items = F.pad(items, (self.max_len - width, 0))
        b, length = items.shape
        if self.positions == "from_start":
            # Count from each row's first item (the leading padding's length;
            # a view whose first item was masked to 0 starts one later).
            first = (items > 0).int().argmax(1, keepdim=True)
            pos = (torch.arange(length, device=items.device) - first).clamp(0, self.max_len - 1)
        else:
            # Right-aligned positions: the last item always sits at position T-1, so
            # a batch padded to its own width gives the same outputs as one padded to T.
            pos = torch.arange(self.max_len - length, self.max_len, device=items.device)
        x = self.item_emb(items) + self.pos_emb(pos)
        x = dropout(self.ln(x), self.dropout, self.training, self.fused)
        valid = items > 0
        causal = torch.ones(length, length, dtype=torch.bool, device=items.device).tril()
        keep = causal[None, None] & valid[:, None, None, :]
        n_virtual = self.max_len - length if virtual_pad else 0
        extra = None
        if n_virtual:
            pad = self.item_emb.weight[0] + self.pos_emb.weight[:n_virtual]
            extra = F.dropout(self.ln(pad), self.dropout, self.training)[None]
            hidden = torch.zeros(b, 1, length, n_virtual, dtype=torch.bool, device=items.device)
            keep = torch.cat([hidden.expand(-1, -1, length, -1), keep.expand(b, -1, -1, -1)], -1)
        mask = torch.zeros(keep.shape, dtype=x.dtype, device=x.device)
        mask.masked_fill_(~keep, ATTENTION_MASK_VALUE)
        for i, block in enumerate(self.blocks):
            last = last_only and i == len(self.blocks) - 1
            x = block(x, mask, last_only=last, extra=extra)
            if extra is not None and not last:
                extra = x[:, :1].expand(-1, n_virtual, -1)
        return x[:, -width:]


# --------------------------------------------------------------------------- #
# Learnable clusters (ELCM, docs/method.md section 3): usable on any representation
# --------------------------------------------------------------------------- #
class LearnableClusters(nn.Module):
    """k learnable centers on the unit sphere, trained by mini-batch losses only.
    A plug-in: it works on any representation, from any model.

    >>> clusters = LearnableClusters(k=8, dim=16)
    >>> z = torch.randn(32, 16)
    >>> loss, assignment = clusters(z)      # add ``loss`` to your model's loss

    ``pull``: "all" pulls every sample toward every center (the paper's loss;
    as docs/method.md section 3 shows, it pulls all samples toward the centers' mean, so on
    fixed data it spreads the centers rather than fitting them), "nearest"
    pulls each sample toward its nearest center only (mini-batch k-means on the
    sphere), "sinkhorn" toward a soft assignment balanced over the batch by
    Sinkhorn-Knopp (as SwAV), so that no intent takes every user.  The push
    term keeps centers apart in all three.
    """

    def __init__(self, k: int, dim: int, push_norm: str = "all_pairs", pull: str = "all"):
        super().__init__()
        self.centers = nn.Parameter(F.normalize(torch.randn(k, dim), dim=1))
        self.push_norm = push_norm
        self.pull = pull

    @torch.no_grad()
    def renormalize(self) -> None:
        """Re-project the centers onto the unit sphere (the authors do it before every step)."""
        self.centers.copy_(F.normalize(self.centers, dim=1))

    @torch.no_grad()
    def init_from(self, z: torch.Tensor, generator: torch.Generator | None = None) -> None:
        """Seed the centers from one mini-batch (>= k rows) by k-means++: each
        next center is a sample drawn with probability ~ squared distance to
        the centers chosen so far, so no two start in the same group."""
        z = F.normalize(z, dim=1)
        k = self.centers.shape[0]
        chosen = [int(torch.randint(len(z), (1,), generator=generator))]
        d = self.sq_distances(z, z[chosen]).squeeze(1).clamp(min=0)
        for _ in range(k - 1):
            nxt = int(torch.multinomial(d + 1e-12, 1, generator=generator))
            chosen.append(nxt)
            d = torch.minimum(d, self.sq_distances(z, z[nxt : nxt + 1]).squeeze(1).clamp(min=0))
        self.centers.copy_(z[chosen])

    @staticmethod
    def sq_distances(x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return (x * x).sum(-1, keepdim=True) + (c * c).sum(-1) - 2 * x @ c.T

    def loss(self, z: torch.Tensor) -> torch.Tensor:
        """Pull (normalised) samples toward the centers, push centers apart."""
        c = self.centers
        k = c.shape[0]
        d = self.sq_distances(z, c)
        if self.pull == "all":
            pull = d.mean()
        elif self.pull == "nearest":
            pull = d.min(dim=1).values.mean()
        else:  # sinkhorn: balanced soft assignment, a target (no gradient through it)
            scores, start = (z @ c.T).detach(), 0
            if distributed.active():  # balanced over the global batch
                scores, start = distributed.gather(scores)
            q = self.sinkhorn(scores)[start : start + len(z)]
            pull = (q * d).sum(dim=1).mean()
        pull = distributed.global_mean(pull, len(z))
        pair = self.sq_distances(c, c).sum()
        push = pair / (k * k) if self.push_norm == "all_pairs" else pair / max(k * (k - 1), 1)
        return pull - push

    def assign(self, z: torch.Tensor) -> torch.Tensor:
        return self.sq_distances(z, self.centers).argmin(dim=-1)

    @staticmethod
    def sinkhorn(scores: torch.Tensor, eps: float = 0.05, iters: int = 3) -> torch.Tensor:
        """(b, k) soft assignments from similarity scores: rows sum to 1 and,
        as the iterations go, every center receives b/k of the batch."""
        q = torch.exp((scores - scores.max()) / eps)
        q = q / q.sum()
        b, k = q.shape
        for _ in range(iters):
            q = q / q.sum(dim=0, keepdim=True) / k  # each center: 1/k of the mass
            q = q / q.sum(dim=1, keepdim=True) / b  # each sample: 1/b of the mass
        return q * b

    def forward(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = F.normalize(z, dim=-1)
        return self.loss(z), self.assign(z)


def fit_clusters(
    clusters: LearnableClusters,
    z: torch.Tensor,
    batch_size: int = 256,
    epochs: int = 5,
    lr: float = 0.05,
    seed: int = 0,
) -> LearnableClusters:
    """Train ``clusters`` alone on fixed representations ``z``, by mini-batches
    (k-means++ seeding on the first batch, then Adam, centers re-projected onto
    the sphere before each step); inside a model, add ``clusters(z)[0]`` to its
    loss instead."""
    g = torch.Generator().manual_seed(seed)
    opt = torch.optim.Adam(clusters.parameters(), lr=lr)
    for epoch in range(epochs):
        order = torch.randperm(len(z), generator=g)
        for start in range(0, len(z), batch_size):
            batch = z[order[start : start + batch_size]]
            if epoch == 0 and start == 0:
                clusters.init_from(batch, g)
            clusters.renormalize()
            loss, _ = clusters(batch)
            opt.zero_grad()
            loss.backward()
            opt.step()
    clusters.renormalize()
    return clusters


def info_nce(
    a: torch.Tensor, b: torch.Tensor, temperature: float = 1.0, cosine: bool = False
) -> torch.Tensor:
    """Symmetric InfoNCE over 2n samples: a_i and b_i are positives, every other
    a_j and b_j (j != i) a negative; dot-product similarity (the authors' NCELoss)
    or, with ``cosine``, the dot product of unit vectors (bounded logits, as
    SimCLR: under a softmax next-item loss the output norms grow, and dot-product
    logits then grow with them)."""
    if cosine:
        a, b = F.normalize(a, dim=-1), F.normalize(b, dim=-1)
    if distributed.active():
        return _info_nce_across_ranks(a, b, temperature)
    n = a.shape[0]
    sim_ab = a @ b.T / temperature
    eye = torch.eye(n, dtype=torch.bool, device=a.device)
    sim_aa = (a @ a.T / temperature).masked_fill(eye, float("-inf"))
    sim_bb = (b @ b.T / temperature).masked_fill(eye, float("-inf"))
    logits = torch.cat(
        [torch.cat([sim_ab, sim_aa], dim=1), torch.cat([sim_bb, sim_ab.T], dim=1)], dim=0
    )
    # Row i (an a) has its positive b_i in column i; row n+i (a b) has a_i in column n+i.
    labels = torch.arange(2 * n, device=a.device)
    return F.cross_entropy(logits, labels)


def _info_nce_across_ranks(a: torch.Tensor, b: torch.Tensor, temperature: float):
    """``info_nce`` over the global batch: this rank's rows against every
    rank's (gathered with their gradients), the same logits row by row."""
    a_all, start = distributed.gather(a)
    b_all, _ = distributed.gather(b)
    n, total = a.shape[0], a_all.shape[0]
    own = torch.arange(n, device=a.device) + start
    itself = torch.zeros(n, total, dtype=torch.bool, device=a.device)
    itself[torch.arange(n, device=a.device), own] = True
    sim_ab = a @ b_all.T / temperature
    sim_aa = (a @ a_all.T / temperature).masked_fill(itself, float("-inf"))
    sim_bb = (b @ b_all.T / temperature).masked_fill(itself, float("-inf"))
    sim_ba = b @ a_all.T / temperature
    logits = torch.cat([torch.cat([sim_ab, sim_aa], 1), torch.cat([sim_bb, sim_ba], 1)])
    labels = torch.cat([own, total + own])
    return distributed.global_mean(F.cross_entropy(logits, labels), 2 * n)


def next_item_bce(h: torch.Tensor, item_emb: torch.Tensor, pos: torch.Tensor, neg: torch.Tensor):
    """Binary cross-entropy with one sampled negative, over non-padding target positions."""
    valid = pos > 0
    h = h[valid]
    pos_logit = (h * item_emb[pos[valid]]).sum(-1)
    neg_logit = (h * item_emb[neg[valid]]).sum(-1)
    return -(F.logsigmoid(pos_logit) + F.logsigmoid(-neg_logit)).mean()


def next_item_ce(h: torch.Tensor, item_emb: torch.Tensor, pos: torch.Tensor, fused: bool = False):
    """Softmax cross-entropy over the whole catalogue (items 1..N), over
    non-padding target positions."""
    valid = pos > 0
    logits = h[valid] @ item_emb[1:].T
    if fused:
        return SoftmaxCrossEntropy.apply(logits, pos[valid] - 1)
    return F.cross_entropy(logits, pos[valid] - 1)


class SoftmaxCrossEntropy(torch.autograd.Function):
    """F.cross_entropy(logits, target) (the mean), from one softmax pass whose
    result becomes the gradient (softmax - one-hot) / n.  torch's own
    log-softmax backward recomputes the softmax and builds a one-hot: passes
    over the (n, N) logits that on a 12k-item catalogue cost more than the
    matrix product that made them (bfloat16)."""

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        p = torch.softmax(logits, dim=1, dtype=torch.float32)  # (no float32 copy first)
        rows = torch.arange(len(target), device=target.device)
        # log-sum-exp from the row's largest logit, whose p >= 1/N never underflows
        lse = logits.amax(dim=1).float() - p.amax(dim=1).log()
        loss = (lse - logits[rows, target].float()).mean()
        p[rows, target] -= 1.0
        ctx.dtype, ctx.n = logits.dtype, max(len(target), 1)
        ctx.save_for_backward(p)
        return loss

    @staticmethod
    def backward(ctx, grad_loss: torch.Tensor):
        (grad,) = ctx.saved_tensors  # (the graph is freed after one backward)
        return grad.mul_(grad_loss / ctx.n).to(ctx.dtype), None


def next_item_sampled_softmax(
    h: torch.Tensor,
    item_emb: torch.Tensor,
    pos: torch.Tensor,
    negatives: torch.Tensor,
    log_q: torch.Tensor | None = None,
):
    """Softmax cross-entropy of each target against shared candidates
    (``negatives``: item ids), over non-padding target positions.  A candidate
    that is the target itself (an accidental hit) is left out.  ``log_q``:
    log of each item's expected count among the candidates (indexed by item
    id); every logit, the target's included, is lowered by it (the log-Q
    correction: sampled softmax then estimates the full softmax's gradient)."""
    valid = pos > 0
    h, target = h[valid], pos[valid]
    pos_logit = (h * item_emb[target]).sum(-1, keepdim=True)
    neg_logit = h @ item_emb[negatives].T
    if log_q is not None:
        pos_logit = pos_logit - log_q[target][:, None]
        neg_logit = neg_logit - log_q[negatives][None, :]
    neg_logit = neg_logit.masked_fill(negatives[None, :] == target[:, None], float("-inf"))
    logits = torch.cat([pos_logit, neg_logit], dim=1)
    return F.cross_entropy(logits, torch.zeros(len(target), dtype=torch.long, device=h.device))


# --------------------------------------------------------------------------- #
# k-means (faiss): ELCRec's initial centers, ICLRec's intents
# --------------------------------------------------------------------------- #
def kmeans_centers(
    x: np.ndarray, k: int, seed: int, nredo: int = 1, max_points_per_center: int = 256
) -> torch.Tensor:
    """k-means centroids of the rows of ``x`` (20 iterations, best of ``nredo``).
    Under torchrun rank 0 alone fits them; the trainer broadcasts its centers."""
    if len(x) < k:
        raise ConfigError(f"model.n_clusters = {k} exceeds the {len(x)} users to cluster")
    if distributed.rank() != 0:
        return torch.zeros(k, x.shape[1])
    x = np.ascontiguousarray(x, dtype=np.float32)
    km = faiss.Kmeans(
        x.shape[1],
        k,
        niter=20,
        nredo=nredo,
        seed=seed,
        verbose=False,
        min_points_per_centroid=1,
        max_points_per_centroid=max_points_per_center,
    )
    km.train(x)
    return torch.from_numpy(km.centroids)


# --------------------------------------------------------------------------- #
# ELCRec
# --------------------------------------------------------------------------- #
VARIANT_PARTS = {
    # variant: (sequence CL, intent CL with fusion, cluster loss)
    "sasrec": (False, False, False),
    "backbone": (True, False, False),
    "icl": (True, True, False),
    "elcm": (True, False, True),
    "full": (True, True, True),
    # no augmented views: the cluster loss, and an intent contrast between each
    # sample's own representation and its center; with pooling = last and
    # per-target samples a step costs about what the encoder alone costs
    "intents": (False, True, True),
}


class ELCRec(SequentialModel):
    def __init__(self, n_items: int, max_len: int, cfg: ModelConfig):
        super().__init__()
        self.cfg = cfg
        self.max_len = max_len
        self.encoder = SASRec(n_items, max_len, cfg)
        self.seq_cl, self.intent_cl, self.use_cluster_loss = self.parts(cfg)
        dim = cfg.hidden * (max_len if cfg.pooling == "concat" else 1)
        self.clusters = LearnableClusters(cfg.n_clusters, dim, cfg.push_norm, cfg.cluster_pull)

    @staticmethod
    def parts(cfg: ModelConfig) -> tuple[bool, bool, bool]:
        """(sequence CL, intent CL, cluster loss): the ablation switch."""
        return VARIANT_PARTS[cfg.variant]

    # The authors' representation keeps the outputs at padding positions (they
    # enter the pooled mean and the concatenated sequence-CL vector); the other
    # poolings zero them, so a batch may be as narrow as its longest sequence.
    @property
    def keeps_padding_outputs(self) -> bool:
        return self.cfg.pooling == "mean_padded"

    def width_for(self, natural: int) -> int:
        if self.cfg.pooling == "concat" or (self.keeps_padding_outputs and not self.cfg.pad_approx):
            return self.max_len
        if self.keeps_padding_outputs:  # pad_approx: one padding column stands for the rest
            return min(natural + 1, self.max_len)
        return max(natural, 1)

    @property
    def uses_intents(self) -> bool:
        return self.intent_cl or self.use_cluster_loss

    @property
    def wants_views(self) -> bool:
        return self.seq_cl

    # ---------------------------------------------------------------------- #
    # Hooks: the centers start as k-means over every user (the authors' code:
    # once, on the untrained encoder, then L2-normalised)
    # ---------------------------------------------------------------------- #
    def on_train_start(self, encode_users: EncodeUsers, seed: int) -> None:
        if self.uses_intents and self.cfg.center_init == "kmeans":
            centers = kmeans_centers(encode_users(), self.cfg.n_clusters, seed)
            self.set_centers(F.normalize(centers, dim=1))

    @torch.no_grad()
    def set_centers(self, centers: torch.Tensor) -> None:
        self.clusters.centers.copy_(centers.to(self.clusters.centers.device))

    # ---------------------------------------------------------------------- #
    def encode_raw(self, items: torch.Tensor) -> torch.Tensor:
        """The encoder's outputs at every position, padding ones included."""
        return self.encoder(items, virtual_pad=self.keeps_padding_outputs and self.cfg.pad_approx)

    def encode(self, items: torch.Tensor) -> torch.Tensor:
        return self._zero_padding(self.encode_raw(items), items)

    def _zero_padding(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Outputs at padding positions set to 0 (so pooling skips them), unless
        the authors' pooling keeps them."""
        return h if self.keeps_padding_outputs else h * (items > 0).unsqueeze(-1)

    def _slot_weights(self, width: int, device) -> torch.Tensor:
        """How many of the T positions each column stands for: the first column
        of a batch narrower than T stands for itself and every position left of it."""
        w = torch.ones(width, device=device)
        w[0] = self.max_len - width + 1
        return w

    def pool(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """One vector per sequence: the user representation that is clustered."""
        if self.cfg.pooling == "mean_padded":
            w = self._slot_weights(h.shape[1], h.device)
            return (h * w[None, :, None]).sum(dim=1) / self.max_len
        if self.cfg.pooling == "concat":
            return h.reshape(h.shape[0], -1)
        if self.cfg.pooling == "last":  # inputs are right-aligned
            return h[:, -1]
        count = (items > 0).sum(dim=1, keepdim=True).clamp(min=1)
        return h.sum(dim=1) / count

    def representation(self, items: torch.Tensor) -> torch.Tensor:
        return self.pool(self.encode(items), items)

    def user_vectors(self, items: torch.Tensor) -> torch.Tensor:
        """Last-position outputs: the query vectors scored against item embeddings."""
        return self.encoder(items, last_only=True)[:, -1, :]

    def item_vectors(self) -> torch.Tensor:
        return self.encoder.item_emb.weight[1:]

    def intent_prototypes(self) -> torch.Tensor:
        """The vectors the intent contrast pulls each view toward, one per center."""
        return self.clusters.centers

    def intents(self, items: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(nearest center, squared distances to all centers) of each sequence."""
        z = self.cluster_space(self.representation(items))
        d = LearnableClusters.sq_distances(z, self.clusters.centers)
        return d.argmin(dim=-1), d

    # ---------------------------------------------------------------------- #
    def _fuse(self, h: torch.Tensor, items: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        """Each position output gets its own nearest center ``c`` (on un-normalised
        outputs, as the authors do), added (shift) or appended (concat)."""
        if self.cfg.fusion == "none" or not self.intent_cl:
            return h
        if c.shape[1] != h.shape[-1]:  # concat pooling: centers live in T*d space
            return h
        idx = LearnableClusters.sq_distances(h, c).argmin(dim=-1)
        nearest = c[idx]
        fused = h + nearest if self.cfg.fusion == "shift" else torch.cat([h, nearest], dim=-1)
        if not self.keeps_padding_outputs:
            fused = fused * (items > 0).unsqueeze(-1)
        return fused

    def _seq_repr(self, h: torch.Tensor, items: torch.Tensor) -> torch.Tensor:
        """Sequence-CL representation: the concatenation of the position outputs
        (the authors' choice) or their mean (over real positions unless the
        padding outputs are kept, as the authors' code does), or the last output."""
        if self.cfg.seq_cl_repr == "last":  # inputs are right-aligned
            return h[:, -1]
        if self.keeps_padding_outputs:
            w = self._slot_weights(h.shape[1], h.device)[None, :, None]
            if self.cfg.seq_cl_repr == "concat":
                # sqrt weights: dot products equal those of the T-wide concatenation
                return (h * w.sqrt()).reshape(h.shape[0], -1)
            return (h * w).sum(dim=1) / self.max_len
        if self.cfg.seq_cl_repr == "concat":
            return h.reshape(h.shape[0], -1)
        return h.sum(dim=1) / (items > 0).sum(dim=1, keepdim=True).clamp(min=1)

    def _next_item_loss(self, h, pos, neg) -> torch.Tensor:
        emb = self.encoder.item_emb.weight
        if self.cfg.loss == "ce":
            return next_item_ce(h, emb, pos, self.cfg.kernels == "fused")
        if self.cfg.loss == "sampled_softmax":
            negatives, log_q = self._candidates(pos, emb.shape[0] - 1)
            return next_item_sampled_softmax(h, emb, pos, negatives, log_q)
        return next_item_bce(h, emb, pos, neg)

    def set_item_counts(self, counts: torch.Tensor) -> None:
        """How often each item (by id, 0 = padding) is a training target: the
        popularity sampler's distribution and the in-batch candidates' log-Q.
        Set by the trainer from the data, not saved with the weights."""
        self.register_buffer("target_freq", counts.float() / counts.sum(), persistent=False)

    def _candidates(self, pos: torch.Tensor, n_items: int):
        """This step's shared negatives and their log-Q (None when uniform
        draws alone make it a constant)."""
        cfg, n = self.cfg, self.cfg.n_negatives
        uniform = cfg.negative_sampler == "uniform"
        if uniform:
            negatives = torch.randint(1, n_items + 1, (n,), device=pos.device)
        else:
            negatives = torch.multinomial(self.target_freq, n, replacement=True)
        if not cfg.in_batch_negatives:
            return negatives, None if uniform else (n * self.target_freq).log()
        # each item's expected count: n draws of the sampler, m batch targets
        targets = pos[pos > 0]
        drawn = n / n_items if uniform else n * self.target_freq  # (padding 0: never read)
        expected = drawn + len(targets) * self.target_freq
        return torch.cat([negatives, targets]), expected.log()

    def renormalize_centers(self) -> None:
        """Centers back on the unit sphere before each step (the authors' code)."""
        if self.uses_intents:
            self.clusters.renormalize()

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        """All loss terms of one training step; ``total`` is what is optimised."""
        cfg = self.cfg
        items, pos, views = batch.items, batch.pos, batch.views
        # The centers the sequence CL fuses: the authors' order takes them as
        # the last step left them (a copy whose gradient reaches the parameter).
        fusion_centers = self.clusters.centers
        if cfg.center_renorm == "after_seq_cl":
            fusion_centers = fusion_centers.clone()
        self.renormalize_centers()
        neg = batch.neg
        # pooling = last without views: the clusters need the last output only
        last_suffices = not self.uses_intents or (cfg.pooling == "last" and not self.seq_cl)
        if batch.last_only and cfg.kernels == "fused" and last_suffices:
            # only the last output is scored, and nothing pools the others
            raw, pos, neg = self.encoder(items, last_only=True), pos[:, -1:], neg[:, -1:]
            h = self._zero_padding(raw, items[:, -1:])
        else:
            raw = self.encode_raw(items)
            h = self._zero_padding(raw, items)
        # The next-item loss reads the raw outputs: padding positions carry no
        # target (the losses skip pos = 0), except the last of an empty input
        # (train.samples = window), which that pipeline trains from padding alone.
        out = {"next_item": self._next_item_loss(raw, pos, neg)}
        if distributed.active():  # a mean over the global batch's targets
            out["next_item"] = distributed.global_mean(out["next_item"], int((pos > 0).sum()))
        total = out["next_item"]
        assigned = None
        cosine = cfg.cl_similarity == "cosine"
        if self.uses_intents:
            pooled = self.pool(h, items)
            z = self.cluster_space(pooled)
            assigned = self.clusters.assign(z)
            if self.use_cluster_loss:
                out["cluster"] = self.clusters.loss(z)
                total = total + cfg.alpha * out["cluster"]
            if self.intent_cl and not self.seq_cl:  # variant intents: no views
                c = self.intent_prototypes()
                out["intent_cl"] = info_nce(pooled, c[assigned], cfg.temperature, cosine)
                total = total + cfg.intent_cl_weight * out["intent_cl"]
        if self.seq_cl and views is not None:
            hv = self.encode(views)
            n = views.shape[0] // 2
            rep = self._seq_repr(self._fuse(hv, views, fusion_centers), views)
            out["seq_cl"] = info_nce(rep[:n], rep[n:], cfg.temperature, cosine)
            total = total + cfg.cl_weight * out["seq_cl"]
            if self.intent_cl:
                if cfg.encoder_passes == 5:  # the authors encode the views again, new dropout
                    hv = self.encode(views)
                pooled = self.pool(hv, views)
                c = self.intent_prototypes()
                if cfg.intent_positive == "original":
                    pos1 = pos2 = c[assigned]
                else:
                    own = self.clusters.assign(self.cluster_space(pooled))
                    pos1, pos2 = c[own[:n]], c[own[n:]]
                out["intent_cl"] = 0.5 * (
                    info_nce(pooled[:n], pos1, cfg.temperature, cosine)
                    + info_nce(pooled[n:], pos2, cfg.temperature, cosine)
                )
                total = total + cfg.intent_cl_weight * out["intent_cl"]
        out["total"] = total
        return out
