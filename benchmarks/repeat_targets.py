"""Repeated targets and the authors' history masking: how one trained run
scores under proper exclusion and under the authors' evaluation code.

On Yelp (not on the Amazon files) a user's test item is sometimes one they
interacted with before.  Excluding history items (``history_mask=neg_inf``,
RecBole's and ours) makes such a target impossible to hit.  The authors'
code (ICLRec's ``trainers.py``, reused by ELCRec) instead sets history
scores to 0 and takes the top 20 with ``np.argpartition``: a repeated target
then sits at 0, above every item with a negative score, so a model whose
scores are mostly negative (the one-negative BCE loss pushes them there) can
hit it.  This script measures both on one run folder:

    python benchmarks/repeat_targets.py benchmarks/grid/plus/yelp/ELCRec+/seed1 --tag yelp_plus

Writes benchmarks/results/repeat_targets_<tag>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, write_results  # noqa: E402

from elcrec import Recommender  # noqa: E402
from elcrec.data import Split  # noqa: E402
from elcrec.evaluate import metrics_from_ranks, rank_all  # noqa: E402

METRICS = ("HR@5", "HR@20", "NDCG@5", "NDCG@20")


def authors_top20(scores: np.ndarray, history_rows, history_cols) -> np.ndarray:
    """The authors' ranking (ICLRec trainers.py, full sort): history scores
    set to 0, the top 20 by argpartition, then sorted by score (columns are
    item ids, column 0 the padding item, as their score matrix)."""
    scores = scores.copy()
    scores[history_rows, history_cols] = 0
    ind = np.argpartition(scores, -20)[:, -20:]
    part = scores[np.arange(len(scores))[:, None], ind]
    order = np.argsort(part)[:, ::-1]
    return ind[np.arange(len(scores))[:, None], order]


def hit_positions(top20: np.ndarray, targets: np.ndarray) -> np.ndarray:
    """Each user's target position in its top-20 list (-1 = not in it)."""
    hit = top20 == targets[:, None]
    return np.where(hit.any(axis=1), hit.argmax(axis=1), -1)


def metrics_from_positions(position: np.ndarray) -> dict[str, float]:
    """HR@k and NDCG@k of top-20 positions (-1 = not in the list), as the
    authors' recall_at_k / ndcg_k give them for one answer per user: a
    position is a rank, and a miss ranks beyond the list."""
    return metrics_from_ranks(np.where(position >= 0, position, 20))


@torch.no_grad()
def measure(run_dir: Path, batch: int = 1024) -> dict:
    rec = Recommender.load(run_dir)
    split = Split(rec.data, rec.cfg.data.max_len)
    model = rec.model
    n_users = rec.data.n_users
    ours = rank_all(model, split, "test")  # history excluded: the project's evaluation
    position = np.empty(n_users, dtype=np.int64)
    positives = np.empty(n_users, dtype=np.int64)
    repeated = np.zeros(n_users, dtype=bool)
    weight = model.encoder.item_emb.weight  # row 0 = padding, scored by the authors too
    for lo in range(0, n_users, batch):
        users = np.arange(lo, min(lo + batch, n_users))
        items = torch.from_numpy(split.inputs(users, "test"))
        scores = (model.user_vectors(items) @ weight.T).numpy()  # (B, N + 1)
        rows, cols = split.history(users, "test")
        targets = split.targets(users, "test")
        repeated[users] = np.bincount(rows[cols == targets[rows]], minlength=len(users)) > 0
        positives[users] = (scores[:, 1:] > 0).sum(axis=1)
        position[users] = hit_positions(authors_top20(scores, rows, cols), targets)
    exclusion = metrics_from_ranks(ours)
    authors = metrics_from_positions(position)
    hit20 = position >= 0  # a position is within the top 20 by construction
    return {
        "run": str(run_dir),
        "model": {"variant": rec.cfg.model.variant, "loss": rec.cfg.model.loss},
        "users": int(n_users),
        "repeated_targets": int(repeated.sum()),
        "repeated_share": float(repeated.mean()),
        "median_items_scored_above_0": float(np.median(positives)),
        "users_with_under_20_items_above_0": float((positives < 20).mean()),
        "exclusion": {m: exclusion[m] for m in METRICS},
        "authors": {m: authors[m] for m in METRICS},
        "authors_hits20_on_repeated_targets": int((hit20 & repeated).sum()),
        "authors_hits20_on_new_targets": int((hit20 & ~repeated).sum()),
        "exclusion_hits20_on_repeated_targets": int(((ours < 20) & repeated).sum()),
        "exclusion_hits20_on_new_targets": int(((ours < 20) & ~repeated).sum()),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="+", help="finished run folders (best.pt, data files)")
    ap.add_argument("--tag", required=True)
    args = ap.parse_args()
    results = [measure(Path(r)) for r in args.runs]
    payload = {"command": command(), "environment": environment(), "runs": results}
    lines = [
        f"# Repeated test targets and the authors' history masking ({args.tag})",
        "",
        f"Command: `{payload['command']}`  ",
        f"Machine: {payload['environment']['machine']}; torch {payload['environment']['torch']}",
        "",
        "| run | loss | repeated targets | items scored > 0 (median) | evaluation | "
        + " | ".join(METRICS)
        + " | hits@20 on repeated / new targets |",
        "|---|---|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for r in results:
        ex, au = r["exclusion"], r["authors"]
        lines.append(
            f"| {r['run']} | {r['model']['loss']} | {r['repeated_targets']} of {r['users']} "
            f"({r['repeated_share']:.1%}) | {r['median_items_scored_above_0']:.0f} | "
            "history excluded | "
            + " | ".join(f"{ex[m]:.4f}" for m in METRICS)
            + f" | {r['exclusion_hits20_on_repeated_targets']} / "
            f"{r['exclusion_hits20_on_new_targets']} |"
        )
        lines.append(
            "| | | | | authors' code (history set to 0) | "
            + " | ".join(f"{au[m]:.4f}" for m in METRICS)
            + f" | {r['authors_hits20_on_repeated_targets']} / "
            f"{r['authors_hits20_on_new_targets']} |"
        )
    write_results(f"repeat_targets_{args.tag}", payload, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
