"""Give committed grid cells that predate per-user test ranks the ranks of a
rerun of them, so that the user-paired comparison can read them.

    python benchmarks/attach_reruns.py RERUN_SUMMARIES [--grid benchmarks/grid]

RERUN_SUMMARIES is the ``--summaries`` folder of an ``elcrec benchmark`` run
of the same preset, model, dataset and seed (PRESET/DATASET/MODEL/seed<N>
cells).  For each rerun cell whose committed cell has no test_ranks.npz:

* the rerun reproduced the cell (same config, same best epoch, every test
  HR@k and NDCG@k equal to the last digit): its ranks are copied into the
  committed cell, whose other files stay as they are;
* it did not (another CPU's arithmetic drifted, and training amplified it):
  the whole rerun is kept beside the grid under ``reruns/PRESET/DATASET/
  MODEL/seed<N>``, which paired comparisons read where the cell has no ranks,
  and the committed cell, whose numbers the tables publish, is left alone.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

GRID = Path(__file__).resolve().parent / "grid"
RERUNS = "reruns"
# Read by the sampled softmax only, with another default when the softmax
# cells ran: not part of what a CE or BCE run computes.
NOT_COMPUTED = (("model", "n_negatives"),)


def computed(config: Path) -> dict:
    from elcrec.config import RunConfig

    raw = RunConfig.load(config).identity()
    for section, key in NOT_COMPUTED:
        raw[section].pop(key, None)
    return raw


def reproduces(rerun: Path, cell: Path) -> bool:
    """Same computation, same best epoch, every HR@k and NDCG@k exactly.

    MRR is left out: it reads every rank, also those far down the list, and
    a rerun on another CPU can order a few items there differently in the
    last bit of their scores while every top-20 rank, which the HR@k and
    NDCG@k that paired comparisons use are made of, is the same."""
    if computed(rerun / "config.json") != computed(cell / "config.json"):
        return False
    new, old = (json.loads((d / "test_metrics.json").read_text()) for d in (rerun, cell))
    top = [m for m in old["test"] if m.startswith(("HR@", "NDCG@"))]
    return new["best_epoch"] == old["best_epoch"] and all(
        new["test"][m] == old["test"][m] for m in top
    )


def _copy(src: Path, dst: Path) -> None:
    """Copy to a temporary name, then rename: no half-written file is left."""
    tmp = dst.with_name(dst.name + ".tmp")
    shutil.copyfile(src, tmp)
    tmp.replace(dst)


def attach(summaries: Path, grid: Path = GRID) -> list[tuple[str, str]]:
    """(cell, what was done) for every rerun cell found under ``summaries``."""
    done = []
    for ranks in sorted(summaries.glob("*/*/*/seed*/test_ranks.npz")):
        rerun = ranks.parent
        rel = rerun.relative_to(summaries)
        cell = grid / rel
        if not (cell / "test_metrics.json").exists():
            done.append((str(rel), "skipped: no committed cell"))
        elif (cell / "test_ranks.npz").exists():
            done.append((str(rel), "skipped: the cell has its ranks"))
        elif reproduces(rerun, cell):
            _copy(ranks, cell / "test_ranks.npz")
            done.append((str(rel), "reproduced: ranks added to the cell"))
        else:
            kept = grid / RERUNS / rel
            kept.mkdir(parents=True, exist_ok=True)
            for name in ("config.json", "test_metrics.json", "test_ranks.npz"):
                _copy(rerun / name, kept / name)
            done.append((str(rel), f"differs: kept under {RERUNS}/{rel}"))
    return done


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("summaries", type=Path)
    ap.add_argument("--grid", type=Path, default=GRID)
    args = ap.parse_args()
    done = attach(args.summaries, args.grid)
    if not done:
        sys.exit(f"{args.summaries}: no rerun cell (PRESET/DATASET/MODEL/seed<N>/test_ranks.npz)")
    for rel, what in done:
        print(f"{rel}: {what}")


if __name__ == "__main__":
    main()
