"""Training: a run, bound to its folder (:mod:`elcrec.runs`), trained to early stopping.

``Run.fit`` reads as its steps: set up (device, data, model, optimizer),
restore (the last checkpoint, or a fresh start), then per epoch train and
validate-and-checkpoint, then the test pass.  The batches, negatives and
views of an epoch depend only on (seed, epoch), and every checkpoint holds
the RNG state, so a run that is killed and resumed ends exactly where an
uninterrupted one does.

Under ``torchrun`` (several processes; see elcrec.distributed) three places
differ and no other, each marked "DDP": ``setup`` joins the process group,
wraps the model and makes every rank but 0 write nothing
(``self.folder.main``); ``batches`` gives each rank its share of every global
batch; the hooks' centers are broadcast from rank 0.
"""

from __future__ import annotations

import os
import resource
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm import tqdm

from elcrec import data as data_mod
from elcrec import distributed
from elcrec.config import ConfigError, RunConfig, TrainConfig, choices
from elcrec.evaluate import evaluate, intent_quality, metrics_from_ranks, per_user_test, rank_all
from elcrec.models import Batch, SequentialModel, build_model, entry
from elcrec.runs import RunFolder


def resolve_device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise ConfigError("train.device = cuda, but no CUDA device is available")
    return torch.device(name)


def native_bf16(device: torch.device) -> bool:
    """Whether the device has bfloat16 units (else torch emulates them, slowly)."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    # (private, but the one place torch says it; absent: assume not)
    checks = ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
    return any(getattr(torch.cpu, name, lambda: False)() for name in checks)


def resolve_precision(asked: str, device: torch.device) -> str:
    """train.precision as the step will run: ``auto`` becomes bf16 where the
    device has bf16 units, else fp32; an explicit bf16 without them is kept,
    with a warning, since it changes nothing but the time."""
    native = native_bf16(device)
    if asked == "auto":
        return "bf16" if native else "fp32"
    if asked == "bf16" and not native:
        print(
            f"warning: train.precision = bf16 on a {device.type} without bfloat16 units: "
            "emulated, about 11x slower per step than fp32 (train.precision = auto "
            "picks fp32 here)",
            file=sys.stderr,
        )
    return asked


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def describe_device(device: torch.device) -> str:
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    n = torch.get_num_threads()
    return f"cpu ({n} thread{'' if n == 1 else 's'})"


@torch.no_grad()
def pooled_train_representations(
    model, split: data_mod.Split, device, batch_size=1024, users: np.ndarray | None = None
):
    """Pooled representations of the users' training inputs (eval mode): every
    user's, or those of ``users``."""
    model.eval()
    users = np.arange(split.data.n_users) if users is None else users
    starts = distributed.my_share(list(range(0, len(users), batch_size)))  # DDP: a share each
    out = []
    for i in starts:
        items = split.inputs(users[i : i + batch_size], "train")
        out.append(model.representation(model.as_batch(items, device)).cpu())
    model.train()
    local = torch.cat(out).numpy().astype(np.float32) if out else np.zeros((0, 0), np.float32)
    if not distributed.active():
        return local
    rows = np.arange(len(users))  # DDP: each rank's rows of the result
    index = np.concatenate([rows[i : i + batch_size] for i in starts] or [rows[:0]])
    return distributed.assemble(len(users), index, local)


def fixed_sample(n: int, size: int, seed: int, stream: int) -> np.ndarray | None:
    """A sorted random sample of ``size`` of 0..n-1, the same at every call
    for the same seed and stream; None (everyone) when ``size`` >= n."""
    if size >= n:
        return None
    return np.sort(np.random.default_rng([seed, stream]).choice(n, size, replace=False))


@dataclass
class State:
    """Early stopping's bookkeeping, saved in every checkpoint."""

    epoch: int = 0  # epochs finished
    best_ndcg20: float = -1.0
    best_epoch: int = -1
    bad_epochs: int = 0
    wall_s: float = 0.0
    lr_decays: int = 0  # learning-rate decays so far (train.lr_decay_patience)
    stopped: bool = False  # the plateau after the last decay

    def running(self, train: TrainConfig) -> bool:
        return not self.stopped and self.bad_epochs < train.patience


class Run:
    """A training run bound to its folder."""

    def __init__(self, cfg: RunConfig, run_dir: str | Path, interactions=None):
        self.cfg = cfg.validate()
        entry(cfg.model.name)  # an unknown model fails before anything is read or written
        self.folder = RunFolder(run_dir, main=True)
        self.dir = self.folder.path
        self.interactions = interactions

    def fit(self, progress: bool = True, max_epochs: int | None = None) -> dict:
        """Train to early stopping (or ``max_epochs`` more epochs, for tests of resuming)."""
        if self.folder.finished():
            self.folder.prepare(self.cfg)  # refuses a folder that holds another config
            return self.folder.test_metrics()
        self.setup()
        state = self.restore()
        stop_at = self.cfg.train.epochs
        if max_epochs is not None:
            stop_at = min(stop_at, state.epoch + max_epochs)
        writer = self.folder.tensorboard(purge_step=state.epoch)
        try:
            while state.epoch < stop_at and state.running(self.cfg.train):
                t0 = time.perf_counter()
                self.model.on_epoch_start(self.encode_users, self.cfg.train.seed, state.epoch)
                distributed.broadcast_parameters(self.model)  # DDP: rank 0's centers
                losses = self.train_epoch(state.epoch, progress)
                train_s = time.perf_counter() - t0
                self.validate_and_checkpoint(state, losses, train_s, writer, progress)
        except KeyboardInterrupt:
            print(
                f"\ninterrupted; resume with: elcrec train --config {self.dir / 'config.json'} "
                f"--run-dir {self.dir}",
                file=sys.stderr,
                flush=True,
            )
            raise
        finally:
            if writer is not None:
                writer.close()
        if state.epoch < self.cfg.train.epochs and state.running(self.cfg.train):
            return {"unfinished": True, **vars(state)}  # max_epochs reached: resumable
        return self.finish(state)

    # -- steps ------------------------------------------------------------- #
    def setup(self) -> None:
        """Device, threads and determinism; the data (before anything is
        written, so bad input leaves no folder behind); the model and optimizer."""
        cfg = self.cfg
        self.device = resolve_device(cfg.train.device)
        if self.device.type == "cuda" and cfg.train.deterministic:
            # cuBLAS is deterministic only with a fixed workspace (set before its first use).
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
        self.precision = resolve_precision(cfg.train.precision, self.device)
        if cfg.train.threads:
            torch.set_num_threads(cfg.train.threads)
        if cfg.train.deterministic:
            torch.use_deterministic_algorithms(True, warn_only=True)
            # ... which by default also fills every new tensor with NaN (to
            # expose reads of uninitialised memory): a tenth of a CPU step,
            # and nothing here reads memory it has not written.
            torch.utils.deterministic.fill_uninitialized_memory = False
        # DDP: join the process group torchrun describes; only rank 0 writes.
        distributed.init_from_environment(self.device)
        self.folder.main = distributed.rank() == 0
        if self.interactions is None and self.folder.holds_data():
            self.folder.prepare(cfg)  # (refuses a folder of another config)
            interactions = None  # the run's own store, not the source again
        else:
            interactions = self.interactions or data_mod.load(cfg.data)
        self.resuming = self.folder.prepare(cfg)
        self.folder.save_data(interactions)
        distributed.barrier()  # DDP: rank 0 has written the store the others read
        # Training reads the store memory-mapped: memory holds what it touches.
        interactions = self.folder.load_data()
        self.split = data_mod.Split(interactions, cfg.data.max_len)
        # every user, unless train.valid_users samples them
        self.valid_users = fixed_sample(
            interactions.n_users, cfg.train.valid_users or interactions.n_users, cfg.train.seed, 13
        )
        torch.manual_seed(cfg.train.seed)
        self.model: SequentialModel = build_model(interactions.n_items, cfg.data.max_len, cfg.model)
        self.model.set_item_counts(torch.from_numpy(self.split.train_target_counts()))
        self.model.to(self.device)
        self.opt = torch.optim.Adam(
            self.model.parameters(), lr=cfg.train.lr, weight_decay=cfg.train.weight_decay
        )
        self.step_model = self.model  # what a training step calls
        if distributed.active():  # DDP: gradients averaged over ranks, own dropout streams
            self.step_model = torch.nn.parallel.DistributedDataParallel(
                self.model,
                find_unused_parameters=not self.model.uses_intents,  # idle centers
            )
            torch.manual_seed(cfg.train.seed * 1000 + distributed.rank())

    def restore(self) -> State:
        """The last checkpoint's weights, optimizer, RNG and state; or a fresh start."""
        if not self.resuming:
            # A fresh start (e.g. a folder copied without its checkpoint) keeps
            # no epochs from before.
            self.folder.truncate_epochs(0)
            self.model.on_train_start(self.encode_users, self.cfg.train.seed)
            distributed.broadcast_parameters(self.model)  # DDP: rank 0's centers
            return State()
        ckpt = self.folder.load_torch("last.pt", self.device)
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        # map_location moved the saved RNG states too; the CPU one must come back.
        # DDP: each rank's own state (a list of them, in rank order).
        rng = ckpt["torch_rng"]
        torch.set_rng_state((rng[distributed.rank()] if isinstance(rng, list) else rng).cpu())
        cuda_rng = ckpt.get("cuda_rng")
        if self.device.type == "cuda" and cuda_rng is not None:
            own = cuda_rng[distributed.rank()] if isinstance(cuda_rng, list) else cuda_rng
            torch.cuda.set_rng_state(own.cpu(), self.device)
        state = State(**ckpt["state"])
        if state.best_epoch >= 0 and not (self.dir / "best.pt").exists():
            # The test pass at the end needs the best epoch's weights; say so
            # now rather than after the remaining epochs (a folder copied
            # back with last.pt alone, e.g. from a GPU machine).
            raise ConfigError(
                f"{self.dir / 'best.pt'} is missing: last.pt records a best epoch "
                f"({state.best_epoch}) whose weights are gone; copy best.pt back "
                "or start the run afresh"
            )
        self.folder.truncate_epochs(state.epoch)
        return state

    def encode_users(self) -> np.ndarray:
        """The users' pooled training representations the models' hooks fit
        their centers on: every user's, up to the model's
        ``kmeans_points_per_center`` per center; beyond that a fixed random
        sample of that many (faiss would subsample to it anyway, after the
        encoder had encoded everyone, and memory would grow with the users)."""
        cap = self.model.kmeans_points_per_center * self.cfg.model.n_clusters
        users = fixed_sample(self.split.data.n_users, cap, self.cfg.train.seed, 11)
        return pooled_train_representations(self.model, self.split, self.device, users=users)

    def sample_order(self, epoch: int) -> list[data_mod.TrainSamples]:
        """The epoch's training samples, shuffled and grouped into batches:
        the one place that decides who trains on what
        (under torchrun, where a rank takes its shard)."""
        t = self.cfg.train
        return self.split.train_batches(t.batch_size, t.seed, epoch, t.bucket_batches, t.samples)

    def batches(self, order, epoch: int):
        """Those batches as tensors on the device, with their negatives and views."""
        cfg, split, model = self.cfg, self.split, self.model
        rng = np.random.default_rng([cfg.train.seed, epoch, 1])
        last_only = cfg.train.samples != "users"  # a prefix sample's loss sits at its end
        ratios = (cfg.model.crop_ratio, cfg.model.mask_ratio, cfg.model.reorder_ratio)
        for samples in order:
            users, ends = samples.users, samples.ends
            own = split.train_inputs(samples)
            items = data_mod.pad_left(own, model.width_for(own.shape[1]))
            pos = split.train_targets(samples, items.shape[1], last_only)
            neg = split.sample_negatives(users, pos, rng)
            views = None
            if model.wants_views:
                if cfg.model.views == "same_target":
                    v1 = own
                    v2 = split.same_target_inputs(ends, rng, own.shape[1])
                else:
                    v1 = split.train_views(samples, rng, ratios)
                    v2 = split.train_views(samples, rng, ratios)
                w = model.width_for(max(v1.shape[1], v2.shape[1]))
                views = np.concatenate([data_mod.pad_left(v1, w), data_mod.pad_left(v2, w)])
            if distributed.active():  # DDP: this rank's rows of the global batch
                rows = np.array_split(np.arange(len(users)), distributed.world_size())
                mine = rows[distributed.rank()]
                items, pos, neg = items[mine], pos[mine], neg[mine]
                if views is not None:
                    views = np.concatenate([views[mine], views[len(users) + mine]])
            yield Batch(
                *(torch.from_numpy(x).to(self.device) for x in (items, pos, neg)),
                None if views is None else torch.from_numpy(views).to(self.device),
                last_only=last_only,
            )

    def train_epoch(self, epoch: int, progress: bool) -> dict[str, float]:
        """One pass over the training samples; the mean of each loss term."""
        self.model.train()
        bf16 = self.precision == "bf16"
        sums: dict[str, float] = {}
        order = self.sample_order(epoch)
        # A bar per batch on a terminal only (it clears itself, leaving the
        # epoch's line); in a log file one line per epoch is enough.
        bar = tqdm(
            self.batches(order, epoch),
            total=len(order),
            desc=f"epoch {epoch}",
            leave=False,
            dynamic_ncols=True,
            disable=not (progress and sys.stderr.isatty()),
        )
        for batch in bar:
            with torch.autocast(self.device.type, torch.bfloat16, enabled=bf16):
                out = self.step_model(batch)
            self.opt.zero_grad(set_to_none=True)
            out["total"].backward()
            self.opt.step()
            for key, value in out.items():
                sums[key] = sums.get(key, 0.0) + float(value.detach())
            if not bar.disable:
                bar.set_postfix({k: f"{v:.3f}" for k, v in out.items()}, refresh=False)
        return {k: v / max(len(order), 1) for k, v in sums.items()}

    def validate_and_checkpoint(
        self, state: State, losses: dict, train_s: float, writer, progress: bool
    ) -> None:
        """Validation metrics; the best weights; the epoch's record; last.pt."""
        cfg, epoch = self.cfg, state.epoch
        t1 = time.perf_counter()
        valid = evaluate(
            self.model,
            self.split,
            "valid",
            cfg.train.eval_batch_size,
            cfg.train.history_mask,
            self.device,
            users=self.valid_users,
        )
        eval_s = time.perf_counter() - t1
        state.wall_s += train_s + eval_s
        if valid["NDCG@20"] > state.best_ndcg20:
            state.best_ndcg20, state.best_epoch, state.bad_epochs = valid["NDCG@20"], epoch, 0
            self.folder.save_torch(self.model.state_dict(), "best.pt")
        else:
            state.bad_epochs += 1
            decay = cfg.train.lr_decay_patience
            if decay and state.bad_epochs % decay == 0:  # a plateau: a smaller step, or stop
                if state.lr_decays == cfg.train.lr_decays:
                    state.stopped = True
                else:
                    state.lr_decays += 1
                    for group in self.opt.param_groups:  # (saved with the optimizer)
                        group["lr"] *= cfg.train.lr_decay_factor
        record = {
            "epoch": epoch,
            **{f"loss/{k}": v for k, v in losses.items()},
            **{f"valid/{k}": v for k, v in valid.items()},
            "lr": self.opt.param_groups[0]["lr"],  # for the next epoch
            "train_s": train_s,
            "eval_s": eval_s,
            "peak_rss_mb": peak_rss_mb(),
        }
        self.folder.append_epoch(record)
        if writer is not None:
            for key, value in record.items():
                if key != "epoch":
                    writer.add_scalar(key, value, epoch)
            writer.flush()
        if progress and self.folder.main:
            print(
                f"epoch {epoch}: valid HR@20 {valid['HR@20']:.4f} NDCG@20 "
                f"{valid['NDCG@20']:.4f} (best {state.best_ndcg20:.4f} @ "
                f"{state.best_epoch}) train {train_s:.1f}s eval {eval_s:.1f}s",
                file=sys.stderr,
                flush=True,
            )
        state.epoch = epoch + 1
        cuda = self.device.type == "cuda"
        # DDP: every rank's random state, in rank order (one process: its own)
        rng = distributed.gather_objects(torch.get_rng_state())
        cuda_rng = distributed.gather_objects(
            torch.cuda.get_rng_state(self.device) if cuda else None
        )
        one = not distributed.active()
        checkpoint = {
            "model": self.model.state_dict(),
            "optimizer": self.opt.state_dict(),
            "torch_rng": rng[0] if one else rng,
            "cuda_rng": cuda_rng[0] if one else (cuda_rng if cuda else None),
            "state": vars(state),
        }
        self.folder.save_torch(checkpoint, "last.pt")
        distributed.barrier()  # DDP: no rank reads a checkpoint rank 0 is writing

    def finish(self, state: State) -> dict:
        """The test pass on the best weights, once for each way of excluding
        history items: the config's own is "test"; the authors' zero masking
        and the correct minus infinity can then be compared on one checkpoint."""
        cfg, model = self.cfg, self.model
        model.load_state_dict(self.folder.load_torch("best.pt", self.device))
        masks = choices(TrainConfig, "history_mask") if cfg.train.evaluate_test else ()
        ranks = {
            mask: rank_all(model, self.split, "test", cfg.train.eval_batch_size, mask, self.device)
            for mask in masks
        }
        by_mask = {mask: metrics_from_ranks(r) for mask, r in ranks.items()}
        if cfg.train.history_mask in ranks:
            self.folder.save_test_ranks(per_user_test(ranks[cfg.train.history_mask], self.split))
        records = [r for r in self.folder.epochs() if r["epoch"] <= state.best_epoch]
        best = records[-1] if records and records[-1]["epoch"] == state.best_epoch else {}
        result = {
            "test": by_mask.get(cfg.train.history_mask),
            "test_by_history_mask": by_mask,
            "best_epoch": state.best_epoch,
            "best_valid_ndcg20": state.best_ndcg20,
            # the summary a table needs without the curve
            "best_valid": {k[6:]: v for k, v in best.items() if k.startswith("valid/")},
            "time_to_best_s": sum(r["train_s"] + r["eval_s"] for r in records),
            "epochs_run": state.epoch,
            "wall_s": state.wall_s,
            "history_mask": cfg.train.history_mask,
            "seed": cfg.train.seed,
            "device": describe_device(self.device),
            "precision": self.precision,  # (train.precision = auto, resolved)
        }
        if model.uses_intents:
            result["intents"] = intent_quality(model, self.split.data, self.device)
        self.folder.save_test_metrics(result)
        return result


def train(cfg: RunConfig, run_dir: str | Path, interactions=None, progress: bool = True) -> dict:
    """Train (or resume) a run and return its test metrics."""
    return Run(cfg, run_dir, interactions).fit(progress=progress)
