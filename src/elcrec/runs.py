"""Run folders: one training run = one folder, read and written here only.

    run_dir/
      config.json        resolved, validated config (``elcrec train --config`` repeats it)
      store/             the data as training reads it, memory-mapped: every user's
                         items (flat.npy, offsets.npy), the (user, item) look-up of
                         negative sampling (touched.npy), the original user and
                         item ids (user_ids.npy, item_ids.npy), store.json
      metrics.jsonl      one line per epoch: losses, validation metrics, timings
      tb/                TensorBoard events
      last.pt            end-of-epoch checkpoint: model, optimizer, RNG, early stopping
      best.pt            weights of the best validation NDCG@20
      test_metrics.json  test metrics of best.pt, written once at the end
      test_ranks.npz     each user's test-item rank, test item and history length
                         (small; compares runs user by user without their weights)

Every file is written atomically, and only by the main process: under
``torchrun`` the other ranks compute the same things and write nothing
(``RunFolder(path, main=False)``).

Run folders live in a work folder outside any source tree by default
(``default_work()``: ``$ELCREC_WORK``, else ``~/elcrec-work``).  What a
repository keeps of a run is its summary (``SUMMARY_FILES``: the config, the
test result and the per-user test ranks), from which every table is built.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import numpy as np
import torch

from elcrec._io import atomic_write, atomic_write_text
from elcrec.config import ConfigError, RunConfig
from elcrec.data import Interactions

SUMMARY_FILES = ("config.json", "test_metrics.json", "test_ranks.npz")


def default_work() -> Path:
    """Where run folders go unless told otherwise."""
    return Path(os.environ.get("ELCREC_WORK") or Path.home() / "elcrec-work")


class RunFolder:
    def __init__(self, path: str | Path, main: bool = True):
        self.path = Path(path)
        self.main = main  # the one guard in front of every write

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    # -- config ------------------------------------------------------------ #
    def prepare(self, cfg: RunConfig) -> bool:
        """Create the folder, or check it belongs to ``cfg``. True = a checkpoint to resume."""
        config_path = self / "config.json"
        if config_path.exists():
            if RunConfig.load(config_path).identity() != cfg.identity():
                raise ConfigError(
                    f"{self.path} holds a run with a different config; choose another --run-dir"
                )
            return (self / "last.pt").exists()
        if self.main:
            self.path.mkdir(parents=True, exist_ok=True)
            cfg.save(config_path)
        return False

    def config(self) -> RunConfig:
        return RunConfig.load(self / "config.json")

    # -- data -------------------------------------------------------------- #
    def save_data(self, interactions: Interactions) -> None:
        """The run's data as a compact store (``Interactions.save``), once."""
        if self.main and not self.holds_data():
            interactions.save(self / "store")

    def holds_data(self) -> bool:
        return (self / "store" / "store.json").exists() or (self / "data.json").exists()

    def load_data(self, mmap: bool = True) -> Interactions:
        """The run's data, memory-mapped from its store; a folder written before
        the store existed holds data.json and sequences.npz instead."""
        if (self / "store" / "store.json").exists():
            return Interactions.open(self / "store", mmap=mmap)
        meta = json.loads((self / "data.json").read_text())
        arrays = np.load(self / "sequences.npz", allow_pickle=False)
        return Interactions(
            meta["user_ids"], meta["item_ids"], arrays["flat"], arrays["offsets"], name=meta["name"]
        )

    # -- checkpoints ------------------------------------------------------- #
    def save_torch(self, obj, name: str) -> None:
        if not self.main:
            return
        buffer = io.BytesIO()
        torch.save(obj, buffer)
        atomic_write(self / name, lambda tmp: Path(tmp).write_bytes(buffer.getvalue()))

    def load_torch(self, name: str, device):
        return torch.load(self / name, map_location=device, weights_only=True)

    # -- per-epoch records ------------------------------------------------- #
    def epochs(self) -> list[dict]:
        """The epochs recorded so far; a line the run is still writing (read
        by another process, a search's pruner say) is not yet an epoch."""
        path = self / "metrics.jsonl"
        if not path.exists():
            return []
        records = []
        for line in path.read_text().splitlines():
            try:
                records.append(json.loads(line))
            except json.JSONDecodeError:
                break
        return records

    def append_epoch(self, record: dict) -> None:
        if self.main:
            with open(self / "metrics.jsonl", "a") as f:
                f.write(json.dumps(record) + "\n")

    def truncate_epochs(self, epochs: int) -> None:
        """Keep only the lines of epochs already checkpointed (a kill may leave one more)."""
        if not self.main or not (self / "metrics.jsonl").exists():
            return
        kept = [r for r in self.epochs() if r["epoch"] < epochs]
        atomic_write_text(self / "metrics.jsonl", "".join(json.dumps(r) + "\n" for r in kept))

    def tensorboard(self, purge_step: int):
        """A SummaryWriter on tb/ (None off the main process or without tensorboard)."""
        if not self.main:
            return None
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional at run time
            return None
        return SummaryWriter(str(self / "tb"), purge_step=purge_step)

    # -- results ----------------------------------------------------------- #
    def finished(self) -> bool:
        return (self / "test_metrics.json").exists()

    def test_metrics(self) -> dict:
        return json.loads((self / "test_metrics.json").read_text())

    def save_test_metrics(self, result: dict) -> None:
        if self.main:
            atomic_write_text(self / "test_metrics.json", json.dumps(result, indent=2) + "\n")

    def copy_summary(self, dest: str | Path) -> None:
        """Copy the run's summary files (those it has) into ``dest``."""
        dest = Path(dest)
        for name in SUMMARY_FILES:
            if (self / name).exists():
                data = (self / name).read_bytes()
                atomic_write(dest / name, lambda tmp, data=data: Path(tmp).write_bytes(data))

    def save_test_ranks(self, arrays: dict[str, np.ndarray]) -> None:
        """Per-user test results, so that runs can be compared user by user
        (benchmarks/paired_runs.py) after their checkpoints are gone."""
        if not self.main:
            return

        def write(tmp):
            with open(tmp, "wb") as f:
                np.savez_compressed(f, **arrays)

        atomic_write(self / "test_ranks.npz", write)
