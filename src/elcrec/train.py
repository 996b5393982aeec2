"""Training: one run = one folder.

    run_dir/
      config.json        resolved, validated config (``elcrec train --config`` repeats it)
      data.json          id mapping (original user and item ids) and dataset name
      sequences.npz      the users' item sequences (for recommending to known users)
      metrics.jsonl      one line per epoch: losses, validation metrics, timings
      tb/                TensorBoard events
      last.pt            end-of-epoch checkpoint: model, optimizer, RNG, early stopping
      best.pt            weights of the best validation NDCG@20
      test_metrics.json  test metrics of best.pt, written once at the end
      test_ranks.npz     each user's test-item rank, test item and history length
                         (small; compares runs user by user without their weights)

The loop is plain: for each epoch, for each batch, losses -> backward -> step;
then validate, keep the best, stop after ``patience`` epochs without progress.
Every checkpoint is written atomically, and the batches, negatives and views
of an epoch depend only on (seed, epoch), so a run that is killed and resumed
ends exactly where an uninterrupted one does.
"""

from __future__ import annotations

import io
import json
import os
import resource
import time
from pathlib import Path

import numpy as np
import torch

from elcrec import data as data_mod
from elcrec._io import atomic_write, atomic_write_text
from elcrec.config import CHOICES, ConfigError, RunConfig
from elcrec.evaluate import evaluate, metrics_from_ranks, nmi, per_user_test, rank_all
from elcrec.model import ELCRec


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device = cuda, but no CUDA device is available")
    return torch.device(name)


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def save_torch(obj, path: Path) -> None:
    buffer = io.BytesIO()
    torch.save(obj, buffer)
    atomic_write(path, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))


def save_data_files(run_dir: Path, interactions: data_mod.Interactions) -> None:
    meta = {
        "name": interactions.name,
        "user_ids": list(interactions.user_ids),
        "item_ids": list(interactions.item_ids),
    }
    atomic_write_text(run_dir / "data.json", json.dumps(meta))

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez(f, flat=interactions.flat, offsets=interactions.offsets)

    atomic_write(run_dir / "sequences.npz", write)


def save_test_ranks(run_dir: Path, ranks: np.ndarray, split: data_mod.Split) -> None:
    """Per-user test results, so that runs can be compared user by user
    (benchmarks/paired_runs.py) after their checkpoints are gone."""

    def write(tmp):
        with open(tmp, "wb") as f:
            np.savez_compressed(f, **per_user_test(ranks, split))

    atomic_write(run_dir / "test_ranks.npz", write)


def load_data_files(run_dir: Path) -> data_mod.Interactions:
    meta = json.loads((run_dir / "data.json").read_text())
    arrays = np.load(run_dir / "sequences.npz", allow_pickle=False)
    return data_mod.Interactions(
        meta["user_ids"], meta["item_ids"], arrays["flat"], arrays["offsets"], name=meta["name"]
    )


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    return f"cpu ({torch.get_num_threads()} threads)"


@torch.no_grad()
def pooled_train_representations(model: ELCRec, split: data_mod.Split, device, batch_size=1024):
    """Pooled representations of every user's training input (eval mode)."""
    model.eval()
    users = np.arange(split.data.n_users)
    out = []
    for i in range(0, len(users), batch_size):
        items = split.inputs(users[i : i + batch_size], "train")
        items = torch.from_numpy(data_mod.pad_left(items, model.width_for(items.shape[1])))
        items = items.to(device)
        out.append(model.pool(model.encode(items), items).cpu())
    model.train()
    return torch.cat(out).numpy().astype(np.float32)


def kmeans_init(model: ELCRec, split: data_mod.Split, device, seed: int) -> None:
    """Fit the centers by k-means (faiss) over the encoder's pooled training
    representations of every user.  ELCRec (the authors' code) does it once,
    on the untrained encoder, and L2-normalises the centers; ICLRec does it
    before every epoch and keeps the raw centroids (its clustering: 20
    iterations, best of 5 restarts)."""
    import faiss

    x = np.ascontiguousarray(pooled_train_representations(model, split, device))
    k = model.cfg.n_clusters
    if len(x) < k:
        raise ConfigError(f"model.n_clusters = {k} exceeds the {len(x)} users to cluster")
    nredo = 5 if model.fixed_centers else 1
    km = faiss.Kmeans(
        x.shape[1], k, niter=20, nredo=nredo, seed=seed, verbose=False, min_points_per_centroid=1
    )
    km.train(x)
    centers = torch.from_numpy(km.centroids).to(device)
    if not model.fixed_centers:
        centers = torch.nn.functional.normalize(centers, dim=1)
    with torch.no_grad():
        model.clusters.centers.copy_(centers)


def intent_quality(model: ELCRec, split: data_mod.Split, device) -> dict:
    """How users spread over the learned intents (full sequences): intents used,
    the largest intent's share of users, and the effective number of intents
    (exp of the entropy of the shares; k when balanced, 1 when collapsed).
    On synthetic data also the NMI with the planted intents (and a random
    assignment's, for scale)."""
    from elcrec.inference import assign_intents

    learned = assign_intents(model, split.data, device=device)
    shares = np.bincount(learned, minlength=model.cfg.n_clusters) / len(learned)
    nonzero = shares[shares > 0]
    out = {
        "used_intents": int(len(nonzero)),
        "largest_share": float(shares.max()),
        "effective_intents": float(np.exp(-(nonzero * np.log(nonzero)).sum())),
    }
    planted = split.data.planted_intents
    if planted is not None:
        rng = np.random.default_rng(0)
        random = rng.integers(0, model.cfg.n_clusters, len(planted))
        out.update(nmi=nmi(planted, learned), random_nmi=nmi(planted, random))
    return out


class Run:
    """A training run bound to its folder."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, interactions=None):
        self.cfg = cfg.validate()
        self.dir = Path(run_dir)
        self.interactions = interactions

    def _prepare_dir(self) -> bool:
        """Create the folder, or check it belongs to this config. True = resume."""
        config_path = self.dir / "config.json"
        if config_path.exists():
            existing = RunConfig.load(config_path)
            if existing.identity() != self.cfg.identity():
                raise ConfigError(
                    f"{self.dir} holds a run with a different config; choose another --run-dir"
                )
            return (self.dir / "last.pt").exists()
        self.dir.mkdir(parents=True, exist_ok=True)
        self.cfg.save(config_path)
        return False

    def fit(self, progress: bool = True, max_epochs: int | None = None) -> dict:
        """Train to early stopping (or ``max_epochs`` more epochs, for tests of resuming)."""
        cfg = self.cfg
        device = resolve_device(cfg.train.device)
        if device.type == "cuda" and cfg.train.deterministic:
            # cuBLAS is deterministic only with a fixed workspace (set before its first use).
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
        if (self.dir / "test_metrics.json").exists():
            self._prepare_dir()  # refuses a folder that holds another config
            return json.loads((self.dir / "test_metrics.json").read_text())
        # Load the data before creating anything, so bad input leaves no folder behind.
        interactions = self.interactions or data_mod.load(cfg.data)
        resuming = self._prepare_dir()
        if not (self.dir / "data.json").exists():
            save_data_files(self.dir, interactions)
        split = data_mod.Split(interactions, cfg.data.max_len)

        torch.manual_seed(cfg.train.seed)
        model = ELCRec(interactions.n_items, cfg.data.max_len, cfg.model).to(device)
        opt = torch.optim.Adam(
            model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
        )
        state = {"epoch": 0, "best_ndcg20": -1.0, "best_epoch": -1, "bad_epochs": 0, "wall_s": 0.0}
        if resuming:
            ckpt = torch.load(self.dir / "last.pt", map_location=device, weights_only=True)
            model.load_state_dict(ckpt["model"])
            opt.load_state_dict(ckpt["optimizer"])
            # map_location moved the saved RNG states too; the CPU one must come back.
            torch.set_rng_state(ckpt["torch_rng"].cpu())
            if device.type == "cuda" and ckpt.get("cuda_rng") is not None:
                torch.cuda.set_rng_state(ckpt["cuda_rng"].cpu(), device)
            state = ckpt["state"]
            if state["best_epoch"] >= 0 and not (self.dir / "best.pt").exists():
                # The test pass at the end needs the best epoch's weights; say so
                # now rather than after the remaining epochs (a folder copied
                # back with last.pt alone, e.g. from a GPU machine).
                raise ConfigError(
                    f"{self.dir / 'best.pt'} is missing: last.pt records a best epoch "
                    f"({state['best_epoch']}) whose weights are gone; copy best.pt back "
                    "or start the run afresh"
                )
            _truncate_metrics(self.dir / "metrics.jsonl", state["epoch"])
        else:
            # A fresh start (e.g. a folder copied without its checkpoint) keeps
            # no epochs from before.
            _truncate_metrics(self.dir / "metrics.jsonl", 0)
            if model.uses_intents and cfg.model.center_init == "kmeans":
                kmeans_init(model, split, device, cfg.train.seed)

        writer = _tensorboard(self.dir / "tb", purge_step=state["epoch"])
        stop_at = (
            cfg.train.epochs
            if max_epochs is None
            else min(cfg.train.epochs, state["epoch"] + max_epochs)
        )
        try:
            while state["epoch"] < stop_at and state["bad_epochs"] < cfg.train.patience:
                epoch = state["epoch"]
                t0 = time.perf_counter()
                if model.fixed_centers:  # ICLRec: intents re-fitted over all users
                    kmeans_init(model, split, device, cfg.train.seed * 1000 + epoch)
                losses = self._train_epoch(model, opt, split, epoch, device, progress)
                t1 = time.perf_counter()
                valid = evaluate(
                    model, split, "valid", cfg.train.eval_batch_size, cfg.train.history_mask, device
                )
                t2 = time.perf_counter()
                state["wall_s"] += t2 - t0
                improved = valid["NDCG@20"] > state["best_ndcg20"]
                if improved:
                    state.update(best_ndcg20=valid["NDCG@20"], best_epoch=epoch, bad_epochs=0)
                    save_torch(model.state_dict(), self.dir / "best.pt")
                else:
                    state["bad_epochs"] += 1
                record = {
                    "epoch": epoch,
                    **{f"loss/{k}": v for k, v in losses.items()},
                    **{f"valid/{k}": v for k, v in valid.items()},
                    "train_s": t1 - t0,
                    "eval_s": t2 - t1,
                    "peak_rss_mb": peak_rss_mb(),
                }
                with open(self.dir / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(record) + "\n")
                if writer is not None:
                    for key, value in record.items():
                        if key != "epoch":
                            writer.add_scalar(key, value, epoch)
                    writer.flush()
                if progress:
                    print(
                        f"epoch {epoch}: valid HR@20 {valid['HR@20']:.4f} NDCG@20 "
                        f"{valid['NDCG@20']:.4f} (best {state['best_ndcg20']:.4f} @ "
                        f"{state['best_epoch']}) train {t1 - t0:.1f}s eval {t2 - t1:.1f}s",
                        flush=True,
                    )
                state["epoch"] = epoch + 1
                save_torch(
                    {
                        "model": model.state_dict(),
                        "optimizer": opt.state_dict(),
                        "torch_rng": torch.get_rng_state(),
                        "cuda_rng": (
                            torch.cuda.get_rng_state(device) if device.type == "cuda" else None
                        ),
                        "state": state,
                    },
                    self.dir / "last.pt",
                )
        except KeyboardInterrupt:
            print(
                f"\ninterrupted; resume with: elcrec train --config {self.dir / 'config.json'} "
                f"--run-dir {self.dir}",
                flush=True,
            )
            raise
        finally:
            if writer is not None:
                writer.close()
        if state["epoch"] < cfg.train.epochs and state["bad_epochs"] < cfg.train.patience:
            return {"unfinished": True, **state}  # max_epochs reached: resumable
        return self._finish(model, split, device, state)

    def _train_epoch(self, model, opt, split, epoch, device, progress) -> dict[str, float]:
        cfg = self.cfg
        model.train()
        rng = np.random.default_rng([cfg.train.seed, epoch, 1])
        samples = cfg.train.samples
        last_only = samples == "prefixes"  # a prefix sample's loss sits at its last position
        batches = split.train_batches(
            cfg.train.batch_size, cfg.train.seed, epoch, cfg.train.bucket_batches, samples
        )
        ratios = (cfg.model.crop_ratio, cfg.model.mask_ratio, cfg.model.reorder_ratio)
        sums: dict[str, float] = {}
        bar = _progress(batches, f"epoch {epoch}", progress)
        for users, ends in bar:
            own = split.train_inputs(users, ends)
            items = data_mod.pad_left(own, model.width_for(own.shape[1]))
            pos = split.train_targets(users, items.shape[1], ends, last_only)
            neg = split.sample_negatives(users, pos, rng)
            views = None
            if model.seq_cl:
                if cfg.model.views == "same_target":
                    v1 = own
                    v2 = split.same_target_inputs(ends, rng, own.shape[1])
                else:
                    v1 = split.train_views(users, rng, ratios, ends)
                    v2 = split.train_views(users, rng, ratios, ends)
                w = model.width_for(max(v1.shape[1], v2.shape[1]))
                both = np.concatenate([data_mod.pad_left(v1, w), data_mod.pad_left(v2, w)])
                views = torch.from_numpy(both).to(device)
            out = model.losses(
                torch.from_numpy(items).to(device),
                torch.from_numpy(pos).to(device),
                torch.from_numpy(neg).to(device),
                views,
                cfg.train.encoder_passes,
            )
            opt.zero_grad(set_to_none=True)
            out["total"].backward()
            opt.step()
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            if progress:
                bar.set_postfix({k: f"{v:.3f}" for k, v in out.items()}, refresh=False)
        return {k: v / max(len(batches), 1) for k, v in sums.items()}

    def _finish(self, model, split, device, state) -> dict:
        cfg = self.cfg
        model.load_state_dict(
            torch.load(self.dir / "best.pt", map_location=device, weights_only=True)
        )
        # The test pass, once for each way of excluding history items: the
        # config's own is "test"; the authors' zero masking and the correct
        # minus infinity can then be compared on the same checkpoint.
        ranks = {
            mask: rank_all(model, split, "test", cfg.train.eval_batch_size, mask, device)
            for mask in (CHOICES["history_mask"] if cfg.train.evaluate_test else ())
        }
        by_mask = {mask: metrics_from_ranks(r) for mask, r in ranks.items()}
        if cfg.train.history_mask in ranks:
            save_test_ranks(self.dir, ranks[cfg.train.history_mask], split)
        result = {
            "test": by_mask.get(cfg.train.history_mask),
            "test_by_history_mask": by_mask,
            "best_epoch": state["best_epoch"],
            "best_valid_ndcg20": state["best_ndcg20"],
            "epochs_run": state["epoch"],
            "wall_s": state["wall_s"],
            "history_mask": cfg.train.history_mask,
            "seed": cfg.train.seed,
            "device": describe_device(device),
        }
        if model.uses_intents:
            result["intents"] = intent_quality(model, split, device)
        atomic_write_text(self.dir / "test_metrics.json", json.dumps(result, indent=2) + "\n")
        return result


def _truncate_metrics(path: Path, epochs: int) -> None:
    """Keep only the lines of epochs already checkpointed (a kill may leave one more)."""
    if not path.exists():
        return
    lines = [
        line
        for line in path.read_text().splitlines()
        if line.strip() and json.loads(line)["epoch"] < epochs
    ]
    atomic_write_text(path, "".join(line + "\n" for line in lines))


def _tensorboard(path: Path, purge_step: int):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:  # tensorboard is optional at run time
        return None
    return SummaryWriter(str(path), purge_step=purge_step)


def _progress(items, desc: str, enabled: bool):
    if not enabled:
        return items
    from tqdm import tqdm

    return tqdm(items, desc=desc, leave=False, dynamic_ncols=True)


def train(cfg: RunConfig, run_dir: str | Path, interactions=None, progress: bool = True) -> dict:
    """Train (or resume) a run and return its test metrics."""
    return Run(cfg, run_dir, interactions).fit(progress=progress)
