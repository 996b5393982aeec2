"""What the trainer, the evaluator and the server ask of a model.

A model is a ``torch.nn.Module`` built as ``Model(n_items, max_len, cfg)``
(``cfg``: :class:`elcrec.config.ModelConfig`) that subclasses
:class:`SequentialModel` and implements two methods:

* ``forward(batch)`` -> a dict of scalar loss terms; ``"total"`` is what the
  trainer back-propagates (the others are logged).  ``forward`` is what
  ``DistributedDataParallel`` hooks, so every loss is computed inside it.
* ``user_vectors(items)`` -> one query vector per sequence; an item's score
  is the dot product with its row of ``item_vectors()``.

Everything else has a default here: models with intents override
``uses_intents``/``intents``, models that train on augmented views set
``wants_views``, and the two hooks let a model prepare itself from every
user's representation (ELCRec's k-means initialisation, ICLRec's per-epoch
refit) without the trainer knowing which model it trains.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from elcrec.data import pad_left


@dataclass
class Batch:
    """One training step's tensors, all (B, L) int64 item ids, 0 = padding,
    right-aligned (the last item sits in the last column)."""

    items: torch.Tensor  # inputs
    pos: torch.Tensor  # next-item target at each position (0: no target)
    neg: torch.Tensor  # one sampled negative per target (the BCE loss)
    # two augmented views of each input, stacked: (2B, L'); None unless
    # the model's ``wants_views``
    views: torch.Tensor | None = None
    # True when only the last column holds targets (per-prefix samples): a
    # model may then compute the last position's output alone
    last_only: bool = False


# A function that encodes every user's training input (eval mode) and returns
# the pooled representations, (users, d) float32; the trainer provides it.
EncodeUsers = Callable[[], np.ndarray]


class SequentialModel(nn.Module):
    """Base class: the defaults of everything but ``forward`` and ``user_vectors``."""

    max_len: int
    wants_views: bool = False  # the trainer builds Batch.views only if set
    uses_intents: bool = False  # intents, intent metrics and the intents export
    # The hooks' k-means fits on at most this many users per center (a fixed
    # random sample beyond that; faiss's default cap)
    kmeans_points_per_center: int = 256

    def forward(self, batch: Batch) -> dict[str, torch.Tensor]:
        raise NotImplementedError

    def user_vectors(self, items: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def item_vectors(self) -> torch.Tensor:
        """(N, d): the vectors of items 1..N that queries are scored against."""
        raise NotImplementedError

    def score(self, items: torch.Tensor) -> torch.Tensor:
        """Scores of items 1..N (column j is item j + 1) for each sequence."""
        return self.user_vectors(items) @ self.item_vectors().T

    def width_for(self, natural: int) -> int:
        """Batch width to encode a batch whose longest sequence has ``natural`` items."""
        return max(natural, 1)

    def as_batch(self, matrix: np.ndarray, device) -> torch.Tensor:
        """A right-aligned (rows, L) item matrix as an input batch on ``device``:
        widened with leading padding to ``width_for(L)``."""
        return torch.from_numpy(pad_left(matrix, self.width_for(matrix.shape[1]))).to(device)

    def representation(self, items: torch.Tensor) -> torch.Tensor:
        """One vector per sequence: what intents cluster (the hooks' k-means,
        ``elcrec intents``); by default the query vector."""
        return self.user_vectors(items)

    def cluster_space(self, z: torch.Tensor) -> torch.Tensor:
        """Where representations meet intent centers: by default the unit sphere."""
        return F.normalize(z, dim=-1)

    def on_train_start(self, encode_users: EncodeUsers, seed: int) -> None:
        """Called once before the first epoch of a fresh run (not on resume)."""

    def on_epoch_start(self, encode_users: EncodeUsers, seed: int, epoch: int) -> None:
        """Called before every training epoch."""

    def set_item_counts(self, counts: torch.Tensor) -> None:
        """How often each item id is a training target (index 0: padding),
        given before training; a model whose loss samples by popularity keeps it."""
