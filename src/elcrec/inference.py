"""Inference: top-K items and the intent for known users or any item sequence,
in the user's own ids.  Loads weights only (``torch.load(weights_only=True)``).

    rec = Recommender.load("runs/beauty")
    rec.recommend([12, 7, 301], k=10)
    rec.recommend_user(42, k=10)
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from elcrec._io import atomic_write
from elcrec._version import __version__
from elcrec.config import RunConfig
from elcrec.data import Interactions, id_list, right_aligned
from elcrec.evaluate import fit_intents, nearest_intents, user_representations
from elcrec.models import SequentialModel, build_model
from elcrec.runs import RunFolder


def typical_items(intent_of_user: np.ndarray, interactions: Interactions, n_intents: int, top=10):
    """Per intent, its most frequent items among those over-represented in it
    (share of its users' interactions above the item's share overall)."""
    lengths = interactions.lengths
    intent = np.repeat(intent_of_user, lengths)
    item = interactions.flat
    n_items = interactions.n_items + 1
    joint = np.bincount(intent * n_items + item, minlength=n_intents * n_items).reshape(
        n_intents, n_items
    )
    overall = np.bincount(item, minlength=n_items) / max(len(item), 1)
    share = joint / np.maximum(joint.sum(axis=1, keepdims=True), 1)
    lift = np.divide(share, overall, out=np.zeros_like(share), where=overall > 0)
    out = []
    for j in range(n_intents):
        candidates = np.flatnonzero((lift[j] > 1.0) & (joint[j] > 0))
        best = candidates[np.argsort(-joint[j, candidates], kind="stable")][:top]
        out.append([(int(i), int(joint[j, i]), float(lift[j, i])) for i in best])
    return out


class ItemIndex:
    """Approximate maximum-inner-product search over item embeddings (faiss
    HNSW), for catalogues too large to score exhaustively per request.  Exact
    scoring stays the default, and reported metrics always use it.

    HNSW finds nearest neighbours; inner products are turned into distances by
    the usual extra coordinate (Bachrach et al., 2014): item x becomes
    [x, sqrt(M^2 - |x|^2)] with M the largest item norm, query q becomes [q, 0],
    so |q' - x'|^2 = |q|^2 + M^2 - 2 q.x and the nearest item has the largest q.x.
    """

    def __init__(self, embeddings: np.ndarray, m: int = 32, ef_construction: int = 100):
        import faiss

        emb = np.asarray(embeddings, dtype=np.float32)
        norms = (emb * emb).sum(axis=1)
        self.max_sq_norm = float(norms.max())
        extra = np.sqrt(np.maximum(self.max_sq_norm - norms, 0.0))[:, None]
        self.index = faiss.IndexHNSWFlat(emb.shape[1] + 1, m)
        self.index.hnsw.efConstruction = ef_construction
        self.index.add(np.ascontiguousarray(np.hstack([emb, extra]), dtype=np.float32))
        self.ef_search = 128

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(inner products, 0-based rows) of the k best items per query; -1 pads."""
        q = np.asarray(queries, dtype=np.float32)
        self.index.hnsw.efSearch = max(self.ef_search, k)
        dist, rows = self.index.search(np.hstack([q, np.zeros((len(q), 1), np.float32)]), k)
        scores = ((q * q).sum(axis=1, keepdims=True) + self.max_sq_norm - dist) / 2
        return scores, rows


class _Scorer(torch.nn.Module):
    def __init__(self, model: SequentialModel):
        super().__init__()
        self.model = model

    def forward(self, items: torch.Tensor) -> torch.Tensor:
        return self.model.score(items)


@dataclass
class Recommendation:
    items: list  # original item ids, best first
    scores: list[float]
    intent: int | None  # nearest intent center (None for the plain SASRec variant)
    unknown_items: list = field(default_factory=list)  # input ids not in the catalogue

    def to_dict(self) -> dict:
        return {
            "items": self.items,
            "scores": self.scores,
            "intent": self.intent,
            "unknown_items": self.unknown_items,
        }


class Recommender:
    def __init__(
        self, model: SequentialModel, interactions: Interactions, cfg: RunConfig, device="cpu"
    ):
        self.model = model.eval()
        # Answers carry the original ids as plain values (JSON), whatever the store holds.
        interactions = dataclasses.replace(
            interactions,
            user_ids=id_list(interactions.user_ids),
            item_ids=id_list(interactions.item_ids),
        )
        self.data = interactions
        self.cfg = cfg
        self.device = torch.device(device)
        self.item_index = {item: i + 1 for i, item in enumerate(interactions.item_ids)}
        self.ann: ItemIndex | None = None  # set by use_ann(); exact scoring otherwise
        self.user_index = {user: u for u, user in enumerate(interactions.user_ids)}
        # JSON round trips turn int ids into ints, but a user may type "12" on a command line.
        self._str_items = {str(item): i for item, i in self.item_index.items()}
        self._str_users = {str(user): u for user, u in self.user_index.items()}

    @classmethod
    def load(
        cls, run_dir: str | Path, device: str = "cpu", checkpoint: str = "best.pt"
    ) -> Recommender:
        folder = RunFolder(run_dir)
        for name in ("config.json", checkpoint):
            if not (folder / name).exists():
                raise FileNotFoundError(f"{folder / name}: missing; is {run_dir} a finished run?")
        if not folder.holds_data():
            raise FileNotFoundError(f"{folder / 'store'}: missing; is {run_dir} a finished run?")
        cfg = folder.config()
        interactions = folder.load_data()
        model = build_model(interactions.n_items, cfg.data.max_len, cfg.model)
        model.load_state_dict(folder.load_torch(checkpoint, device))
        return cls(model.to(device), interactions, cfg, device)

    def use_ann(self, ef_search: int = 128, m: int = 32) -> Recommender:
        """Answer from an HNSW index over the item embeddings instead of scoring
        every item (for large catalogues; approximate)."""
        emb = self.model.item_vectors().detach().cpu().numpy()
        self.ann = ItemIndex(emb, m=m)
        self.ann.ef_search = ef_search
        return self

    def _lookup_item(self, item):
        if item in self.item_index:
            return self.item_index[item]
        return self._str_items.get(str(item))

    def user_row(self, user) -> int | None:
        """Internal index of an original user id (as given or typed as text), or None."""
        u = self.user_index.get(user)
        return self._str_users.get(str(user)) if u is None else u

    def user_sequence(self, user) -> np.ndarray:
        u = self.user_row(user)
        if u is None:
            raise KeyError(f"unknown user {user!r}")
        return self.data.sequence(u)

    def recommend(self, items: list, k: int = 10, exclude_seen: bool = True) -> Recommendation:
        """Top-k for a new sequence of original item ids (oldest first)."""
        return self.recommend_many([items], k, exclude_seen)[0]

    def recommend_user(self, user, k: int = 10, exclude_seen: bool = True) -> Recommendation:
        """Top-k for a known user, from their whole sequence."""
        seq = self.user_sequence(user)
        return self._recommend_internal([seq], k, exclude_seen, [[]])[0]

    def recommend_many(self, sequences: list[list], k: int = 10, exclude_seen: bool = True):
        internal, unknown = [], []
        for seq in sequences:
            ids = [self._lookup_item(item) for item in seq]
            unknown.append([item for item, i in zip(seq, ids) if i is None])
            internal.append(np.array([i for i in ids if i is not None], dtype=np.int64))
        return self._recommend_internal(internal, k, exclude_seen, unknown)

    @torch.no_grad()
    def _recommend_internal(self, seqs: list[np.ndarray], k, exclude_seen, unknown):
        if k < 1:
            raise ValueError("k must be at least 1")
        k = min(k, self.data.n_items)
        lengths = np.array([len(s) for s in seqs], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        flat = np.concatenate(seqs) if len(seqs) else np.zeros(0, np.int64)
        matrix = right_aligned(flat, offsets[:-1], offsets[1:], self.model.max_len)
        items = torch.from_numpy(matrix).to(self.device)
        if self.ann is None:
            scores = self.model.score(items)
            if exclude_seen:
                rows = np.repeat(np.arange(len(seqs)), lengths)
                scores[torch.from_numpy(rows), torch.from_numpy(flat - 1)] = float("-inf")
            top_values, top_indices = (t.tolist() for t in torch.topk(scores, k, dim=1))
        else:
            top_values, top_indices = self._ann_top(items, seqs, k, exclude_seen)
        intents = None
        if self.model.uses_intents:
            intents = self.model.intents(self.model.as_batch(matrix, self.device))[0].tolist()
        out = []
        for r in range(len(seqs)):
            idx, vals = top_indices[r], top_values[r]
            keep = [j for j, v in enumerate(vals) if v != float("-inf")]
            out.append(
                Recommendation(
                    items=[self.data.item_ids[idx[j]] for j in keep],
                    scores=[float(vals[j]) for j in keep],
                    intent=None if intents is None else int(intents[r]),
                    unknown_items=unknown[r],
                )
            )
        return out

    def _ann_top(self, items, seqs, k, exclude_seen):
        """Top-k from the HNSW index, asking for enough extra items to drop the seen ones."""
        queries = self.model.user_vectors(items).cpu().numpy()
        extra = max((len(set(s.tolist())) for s in seqs), default=0) if exclude_seen else 0
        values, rows = self.ann.search(queries, k + extra)
        out_v, out_i = [], []
        for r, seq in enumerate(seqs):
            seen = set((seq - 1).tolist()) if exclude_seen else set()
            keep = [j for j, i in enumerate(rows[r]) if i >= 0 and int(i) not in seen][:k]
            out_v.append([float(values[r, j]) for j in keep])
            out_i.append([int(rows[r, j]) for j in keep])
        return out_v, out_i

    def recommend_users_to_parquet(
        self, users: list | None, out: str | Path, k: int = 20, exclude_seen=True, chunk=2048
    ) -> int:
        """Top-k for many known users (``None`` = all), streamed to Parquet in
        chunks so memory stays bounded: one row per (user, rank) with the item,
        its score and the user's intent, in original ids.  Returns the row count."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        internal = np.arange(self.data.n_users) if users is None else self._user_rows(users)
        rows = 0

        def write(tmp: str) -> None:
            nonlocal rows
            writer = None
            for start in range(0, len(internal), chunk):
                part = internal[start : start + chunk]
                recs = self._recommend_internal(
                    [self.data.sequence(u) for u in part], k, exclude_seen, [[]] * len(part)
                )
                n = [len(r.items) for r in recs]
                table = pa.table(
                    {
                        "user": pa.array(
                            np.repeat(np.asarray(self.data.user_ids, object)[part], n).tolist()
                        ),
                        "rank": pa.array(
                            np.concatenate([np.arange(1, m + 1) for m in n]), pa.int32()
                        ),
                        "item": pa.array([i for r in recs for i in r.items]),
                        "score": pa.array([v for r in recs for v in r.scores], pa.float32()),
                        "intent": pa.array(
                            np.repeat([-1 if r.intent is None else r.intent for r in recs], n),
                            pa.int32(),
                        ),
                    }
                )
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                writer.write_table(table)
                rows += table.num_rows
            if writer is not None:
                writer.close()

        atomic_write(out, write)
        return rows

    def _user_rows(self, users: list) -> np.ndarray:
        rows = [self.user_row(user) for user in users]
        if None in rows:
            raise KeyError(users[rows.index(None)])
        return np.array(rows, dtype=np.int64)

    @torch.no_grad()
    def intent(self, items: list, top: int = 3) -> dict:
        """Nearest intents of a sequence of original item ids (oldest first)."""
        if not self.model.uses_intents:
            raise ValueError(
                "this run's model has no intents (variant sasrec or backbone); "
                "`elcrec intents RUN --k K` fits some to its users for inspection"
            )
        ids = [self._lookup_item(item) for item in items]
        known = np.array([i for i in ids if i is not None], dtype=np.int64)
        matrix = right_aligned(known, np.array([0]), np.array([len(known)]), self.model.max_len)
        _, d = self.model.intents(self.model.as_batch(matrix, self.device))
        nearest = torch.topk(d[0], min(top, d.shape[1]), largest=False)
        return {
            "intent": int(nearest.indices[0]),
            "nearest": [
                {"intent": int(j), "sq_distance": float(v)}
                for j, v in zip(nearest.indices.tolist(), nearest.values.tolist())
            ],
            "unknown_items": [item for item, i in zip(items, ids) if i is None],
        }

    def export_intents(
        self,
        out_dir: str | Path,
        with_repr: bool = False,
        top_items: int = 10,
        k: int | None = None,
        seed: int = 0,
    ):
        """users.{parquet,csv}: each user's intent, the 3 nearest centers and
        their squared distances (and the pooled representation if asked);
        intents.{parquet,csv}: each intent's size and most typical items.
        All ids are the user's own.  Returns the two tables.

        The intents are the model's learned centers, or, with ``k`` (and for
        a model that learned none), ``k`` centers fitted to the trained users
        by k-means: an encoder alone still groups its users for inspection.
        The intents table's ``source`` column says which."""
        import pandas as pd

        # Every user is encoded once; fitting and assigning share the vectors.
        pooled = user_representations(self.model, self.data, self.device)
        centers, source = None, "learned"
        if k is not None or not self.model.uses_intents:
            k = self.cfg.model.n_clusters if k is None else k
            centers = fit_intents(self.model, self.data, k, seed, self.device, pooled)
            source = "kmeans"
        ids, dists, reprs = nearest_intents(
            self.model, self.data, self.device, 3, with_repr, centers, pooled
        )
        users = pd.DataFrame({"user": list(self.data.user_ids), "length": self.data.lengths})
        users["intent"] = ids[:, 0]
        for r in range(ids.shape[1]):
            users[f"center_{r + 1}"] = ids[:, r]
            users[f"sq_distance_{r + 1}"] = dists[:, r]
        if reprs is not None:
            for c in range(reprs.shape[1]):
                users[f"repr_{c}"] = reprs[:, c]
        k = self.cfg.model.n_clusters if centers is None else len(centers)
        sizes = np.bincount(ids[:, 0], minlength=k)
        typical = typical_items(ids[:, 0], self.data, k, top_items)
        intents = pd.DataFrame(
            {
                "intent": np.arange(k),
                "users": sizes,
                "share": sizes / max(len(users), 1),
                "typical_items": [
                    " ".join(str(self.data.item_ids[i - 1]) for i, _, _ in t) for t in typical
                ],
                "typical_item_counts": [" ".join(str(c) for _, c, _ in t) for t in typical],
                "source": source,
            }
        )
        out_dir = Path(out_dir)
        for name, table in (("users", users), ("intents", intents)):
            atomic_write(
                out_dir / f"{name}.parquet", lambda tmp, t=table: t.to_parquet(tmp, index=False)
            )
            atomic_write(out_dir / f"{name}.csv", lambda tmp, t=table: t.to_csv(tmp, index=False))
        return users, intents

    def export(self, out_dir: str | Path) -> Path:
        """The scorer, runnable without this package, twice: ``scorer.pt``
        (TorchScript: ``torch.jit.load``, or libtorch from C++) and
        ``scorer.pt2`` (``torch.export.load(path).module()``).  Both map a
        (batch, T) int64 tensor of internal item ids, left-padded with 0 to
        T = max_len, to (batch, N) scores of items 1..N.  ``items.json`` beside
        them maps internal ids to original ids (item i is ``item_ids[i - 1]``).
        Returns the TorchScript file."""
        out_dir = Path(out_dir)
        scorer = _Scorer(self.model).eval()
        example = torch.zeros(2, self.model.max_len, dtype=torch.int64)
        example[:, -1] = 1
        batch = torch.export.Dim("batch", min=1)
        with torch.no_grad():
            program = torch.export.export(scorer, (example,), dynamic_shapes=({0: batch},))
            script = torch.jit.trace(scorer, example)
        atomic_write(out_dir / "scorer.pt2", lambda tmp: torch.export.save(program, tmp))
        path = out_dir / "scorer.pt"
        atomic_write(path, lambda tmp: torch.jit.save(script, tmp))
        info = {"max_len": self.model.max_len, "item_ids": list(self.data.item_ids)}
        atomic_write(out_dir / "items.json", lambda tmp: Path(tmp).write_text(json.dumps(info)))
        return path

    def metadata(self) -> dict:
        return {
            "dataset": self.data.name,
            "items": self.data.n_items,
            "users": self.data.n_users,
            "intents": self.cfg.model.n_clusters if self.model.uses_intents else 0,
            "model": json.loads(json.dumps(self.cfg.to_dict()["model"])),
            "version": __version__,
        }
