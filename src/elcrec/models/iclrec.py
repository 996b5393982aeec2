"""ICLRec (Chen et al., WWW 2022), the method ELCRec replaces: the same
encoder and contrasts, but its intents are k-means centroids re-fitted over
every user before every epoch and held fixed in between (no cluster loss, no
fusion, centers never learned).  As its authors' code does, a user is assigned
to the nearest raw centroid, and the intent contrast pulls the views toward
that centroid's unit vector."""

from __future__ import annotations

import torch
import torch.nn.functional as F

from elcrec.config import ModelConfig
from elcrec.models.base import EncodeUsers
from elcrec.models.elcrec import ELCRec, kmeans_centers


class ICLRec(ELCRec):
    # Its authors' clustering fits on up to 4096 users per center (all of
    # them, up to a million, for k = 256): the per-epoch cost ELCRec removes.
    kmeans_points_per_center = 4096

    def __init__(self, n_items: int, max_len: int, cfg: ModelConfig):
        super().__init__(n_items, max_len, cfg)
        self.clusters.centers.requires_grad_(False)

    @staticmethod
    def parts(cfg: ModelConfig) -> tuple[bool, bool, bool]:
        return True, True, False  # sequence CL, intent CL, no cluster loss

    def on_train_start(self, encode_users: EncodeUsers, seed: int) -> None:
        """Nothing: the first epoch's refit sets the centers."""

    def on_epoch_start(self, encode_users: EncodeUsers, seed: int, epoch: int) -> None:
        # its clustering: 20 iterations, best of 5 restarts, raw centroids
        centers = kmeans_centers(
            encode_users(),
            self.cfg.n_clusters,
            seed * 1000 + epoch,
            nredo=5,
            max_points_per_center=self.kmeans_points_per_center,
        )
        self.set_centers(centers)

    def cluster_space(self, pooled: torch.Tensor) -> torch.Tensor:
        return pooled  # raw k-means centroids live where the pooled vectors are

    def intent_prototypes(self) -> torch.Tensor:
        # Its authors' KMeans.train L2-normalises the centroids it hands to the
        # contrast (the search index keeps the raw ones for the assignment):
        # at temperature 1 a raw centroid's dot products scale with its norm.
        return F.normalize(self.clusters.centers, dim=1)

    def _fuse(self, h: torch.Tensor, items: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        return h

    def renormalize_centers(self) -> None:
        pass
