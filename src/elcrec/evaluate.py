"""Evaluation: full ranking over the whole catalogue, and the intents (each
user's nearest centers, how users spread over them, NMI with planted ones).

The rank of a target is the number of other items scored at least as high:
ties count against the target (pessimistic), so a tie never helps a model and
the result does not depend on the order of the catalogue.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from elcrec import distributed
from elcrec.config import ConfigError
from elcrec.data import Interactions, right_aligned
from elcrec.models.elcrec import LearnableClusters, kmeans_centers

KS = (5, 10, 20)


def target_ranks(
    scores: torch.Tensor,
    targets: torch.Tensor,
    history: tuple[torch.Tensor, torch.Tensor] | None = None,
    history_mask: str = "neg_inf",
) -> torch.Tensor:
    """0-based rank of each row's target column among all columns.

    ``history`` = (row, column) pairs to exclude: minus infinity (correct), or
    zero (the authors' code, under which a history item can still outrank
    items with negative scores).  ``scores`` is modified in place.
    """
    if history is not None and len(history[0]):
        fill = float("-inf") if history_mask == "neg_inf" else 0.0
        scores[history[0], history[1]] = fill
    target_score = scores.gather(1, targets[:, None])
    # ">=" counts the target itself once, hence the -1 (one pass over the scores).
    return (scores >= target_score).sum(dim=1) - 1


def per_user_metrics(ranks: np.ndarray, ks=KS) -> dict[str, np.ndarray]:
    """Each user's HR@k, NDCG@k and reciprocal rank (0-based target ranks);
    their means are the reported metrics (paired comparisons need them per user)."""
    ranks = np.asarray(ranks, dtype=np.float64)
    out = {}
    for k in ks:
        hit = ranks < k
        out[f"HR@{k}"] = hit.astype(np.float64)
        out[f"NDCG@{k}"] = np.where(hit, 1.0 / np.log2(ranks + 2.0), 0.0)
    out["MRR"] = 1.0 / (ranks + 1.0)
    return out


def metrics_from_ranks(ranks: np.ndarray, ks=KS) -> dict[str, float]:
    return {name: float(values.mean()) for name, values in per_user_metrics(ranks, ks).items()}


def per_user_test(ranks: np.ndarray, split, stage: str = "test") -> dict[str, np.ndarray]:
    """Each user's target rank, target item and history length (the items
    before it) on the test split, as a run saves them in test_ranks.npz (or
    on the validation split, whose target comes one item earlier)."""
    users = np.arange(len(ranks))
    before = 1 if stage == "test" else 2
    return {
        "ranks": np.asarray(ranks, dtype=np.int32),
        "targets": np.asarray(split.targets(users, stage), dtype=np.int32),
        "history": np.asarray(split.data.lengths[users] - before, dtype=np.int32),
    }


@torch.no_grad()
def evaluate(
    model,
    split,
    stage: str,
    batch_size: int = 2048,
    history_mask: str = "neg_inf",
    device: torch.device | str = "cpu",
    users: np.ndarray | None = None,
) -> dict[str, float]:
    """HR/NDCG@{5,10,20} and MRR over all users (or ``users``) for 'valid' or 'test'."""
    ranks = rank_all(model, split, stage, batch_size, history_mask, device, users=users)
    return metrics_from_ranks(ranks if users is None else ranks[users])


@torch.no_grad()
def rank_all(
    model,
    split,
    stage,
    batch_size=2048,
    history_mask="neg_inf",
    device="cpu",
    score_chunk=256,
    queries=None,
    users=None,
):
    """Target rank of every user.  Scores are computed item-major (items x users)
    in chunks of ``score_chunk`` users: the skinny (d = 64) product is several
    times faster that way on CPU, and a chunk of scores stays in cache while it
    is masked and compared.  ``queries(items)`` replaces ``model.user_vectors``
    (for probes that score with another query vector).  ``users``: rank
    those only (the other entries of the result are undefined)."""
    queries = queries or model.user_vectors
    was_training = model.training
    model.eval()
    ranks = np.empty(split.data.n_users, dtype=np.int64)
    item_emb = model.item_vectors()
    # Under torchrun each rank ranks its share of the users, and every rank
    # gets all ranks back: no user counted twice, no per-rank means averaged.
    mine = distributed.my_share(list(split.eval_batches(batch_size, stage, users)))
    for users in mine:
        # Scoring reads the last position only, which padding never changes.
        items = torch.from_numpy(split.inputs(users, stage)).to(device)
        q = queries(items)
        rows, hist = split.history(users, stage)
        targets = torch.from_numpy(split.targets(users, stage) - 1).to(device)
        for lo in range(0, len(users), score_chunk):
            hi = min(lo + score_chunk, len(users))
            scores = (item_emb @ q[lo:hi].T).T  # (chunk, N) view of item-major scores
            sel = (rows >= lo) & (rows < hi)
            history = (
                torch.from_numpy(rows[sel] - lo).to(device),
                torch.from_numpy(hist[sel] - 1).to(device),
            )
            chunk_ranks = target_ranks(scores, targets[lo:hi], history, history_mask)
            ranks[users[lo:hi]] = chunk_ranks.cpu().numpy()
    model.train(was_training)
    if distributed.active():
        index = np.concatenate(mine) if mine else np.zeros(0, dtype=np.int64)
        ranks = distributed.assemble(len(ranks), index, ranks[index])
    return ranks


def nmi(labels_true, labels_pred) -> float:
    """Normalised mutual information, arithmetic-mean normalisation (as scikit-learn)."""
    a = np.unique(np.asarray(labels_true), return_inverse=True)[1]
    b = np.unique(np.asarray(labels_pred), return_inverse=True)[1]
    n = len(a)
    if n == 0:
        return 0.0
    joint = np.zeros((a.max() + 1, b.max() + 1))
    np.add.at(joint, (a, b), 1.0)
    joint /= n
    pa, pb = joint.sum(1), joint.sum(0)
    nz = joint > 0
    mi = float((joint[nz] * np.log(joint[nz] / np.outer(pa, pb)[nz])).sum())
    ha = float(-(pa[pa > 0] * np.log(pa[pa > 0])).sum())
    hb = float(-(pb[pb > 0] * np.log(pb[pb > 0])).sum())
    if ha == 0.0 and hb == 0.0:
        return 1.0
    denom = (ha + hb) / 2
    return max(mi / denom, 0.0) if denom > 0 else 0.0


# --------------------------------------------------------------------------- #
# Intents
# --------------------------------------------------------------------------- #
def user_representations(
    model, interactions: Interactions, device="cpu", batch_size: int = 2048
) -> torch.Tensor:
    """(users, d) pooled representation of every user's full sequence (the
    test input: all but the last item), on the CPU, computed a batch at a time
    in eval mode.  Computed once and handed to ``fit_intents`` and
    ``nearest_intents``, so an export with fitted intents encodes each user
    once."""
    was_training = model.training
    model.eval()
    n = interactions.n_users
    starts, ends = interactions.offsets[:-1], interactions.offsets[1:] - 1
    parts = []
    try:
        with torch.no_grad():
            for i in range(0, n, batch_size):
                sl = slice(i, min(i + batch_size, n))
                items = right_aligned(interactions.flat, starts[sl], ends[sl], model.max_len)
                parts.append(model.representation(model.as_batch(items, device)).cpu())
    finally:
        model.train(was_training)
    return torch.cat(parts)


@torch.no_grad()
def nearest_intents(
    model,
    interactions: Interactions,
    device="cpu",
    top: int = 3,
    with_repr: bool = False,
    centers: torch.Tensor | None = None,
    pooled: torch.Tensor | None = None,
    batch_size: int = 2048,
):
    """For every user's full sequence: the ``top`` nearest centers (the
    model's learned ones unless ``centers`` is given), their squared distances,
    and optionally the pooled representation that was clustered.  ``pooled``
    (from ``user_representations``) skips encoding the users again.  Returns
    (ids, distances, reprs)."""
    centers = model.clusters.centers if centers is None else centers
    centers = centers.detach().to(device)
    if pooled is None:
        pooled = user_representations(model, interactions, device)
    top = min(top, len(centers))
    ids, dists = [], []
    # A batch of users at a time: users x centers distances stay small.
    for i in range(0, len(pooled), batch_size):
        z = model.cluster_space(pooled[i : i + batch_size].to(device))
        nearest = torch.topk(LearnableClusters.sq_distances(z, centers), top, dim=1, largest=False)
        ids.append(nearest.indices.cpu())
        dists.append(nearest.values.cpu())
    reprs = pooled.numpy().astype(np.float32) if with_repr else None
    return torch.cat(ids).numpy(), torch.cat(dists).numpy().astype(np.float32), reprs


@torch.no_grad()
def fit_intents(
    model,
    interactions: Interactions,
    k: int,
    seed: int = 0,
    device="cpu",
    pooled: torch.Tensor | None = None,
):
    """Intents found after training, for a model that learned none (or to set
    beside its learned ones): k-means (faiss) over every user's representation
    in the space the learned centers live in (the unit sphere), the centroids
    projected back onto it.  ``pooled`` as in ``nearest_intents``.  Returns
    (k, d) centers."""
    if not 1 <= k <= interactions.n_users:
        raise ConfigError(f"intents: k = {k}, expected 1 to {interactions.n_users} (the users)")
    if pooled is None:
        pooled = user_representations(model, interactions, device)
    z = model.cluster_space(pooled.to(device)).cpu()
    return F.normalize(kmeans_centers(z.numpy(), k, seed), dim=1)


def assign_intents(model, interactions: Interactions, device="cpu") -> np.ndarray:
    """Nearest center of every user's full sequence."""
    return nearest_intents(model, interactions, device, top=1)[0][:, 0]


def intent_quality(model, data: Interactions, device="cpu") -> dict:
    """How users spread over the learned intents (full sequences): intents used,
    the largest intent's share of users, and the effective number of intents
    (exp of the entropy of the shares; k when balanced, 1 when collapsed).
    On synthetic data also the NMI with the planted intents (and a random
    assignment's, for scale)."""
    learned = assign_intents(model, data, device=device)
    shares = np.bincount(learned, minlength=model.cfg.n_clusters) / len(learned)
    nonzero = shares[shares > 0]
    out = {
        "used_intents": int(len(nonzero)),
        "largest_share": float(shares.max()),
        "effective_intents": float(np.exp(-(nonzero * np.log(nonzero)).sum())),
    }
    if data.planted_intents is not None:
        rng = np.random.default_rng(0)
        random = rng.integers(0, model.cfg.n_clusters, len(data.planted_intents))
        planted = data.planted_intents
        out.update(nmi=nmi(planted, learned), random_nmi=nmi(planted, random))
    return out
