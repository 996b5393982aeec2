"""Does the intent help at scoring time?  Re-scores a finished run with the
query shifted toward its nearest intent center, q + lam * |q| * c, and reports
validation metrics for a few lam (no retraining; test is not read).

    python benchmarks/intent_scoring.py benchmarks/grid/plus/beauty/ELCRec+/seed1 --tag beauty_seed1

Two choices of center, both reported: "pooled", the center of the user's
pooled representation (the intent `elcrec recommend` reports), and "last",
the center nearest the query itself (as the training-time fusion picks one
per position).
Writes benchmarks/results/probes/intent_scoring_<tag>.{json,md}.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, environment, write_results  # noqa: E402

from elcrec import Recommender  # noqa: E402
from elcrec.data import Split  # noqa: E402
from elcrec.evaluate import metrics_from_ranks, rank_all  # noqa: E402

METRICS = ("HR@5", "HR@20", "NDCG@5", "NDCG@20")


@torch.no_grad()
def shifted_ranks(rec: Recommender, split: Split, stage: str, lam: float, nearest: str):
    """The evaluator's ranks with each query shifted toward its intent center."""
    model = rec.model
    centers = model.clusters.centers

    def shifted(items: torch.Tensor) -> torch.Tensor:
        q = model.user_vectors(items)
        if not lam:
            return q
        if nearest == "pooled":
            idx = model.intents(items)[0]
        else:
            idx = torch.cdist(q, centers).argmin(dim=-1)
        return q + lam * q.norm(dim=-1, keepdim=True) * centers[idx]

    return rank_all(model, split, stage, queries=shifted)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("run", type=Path)
    ap.add_argument("--tag", required=True)
    ap.add_argument("--lams", type=float, nargs="+", default=[0.0, 0.05, 0.1, 0.2, 0.4])
    args = ap.parse_args()
    torch.set_num_threads(1)
    rec = Recommender.load(args.run)
    if not rec.model.uses_intents or rec.cfg.model.pooling == "concat":
        raise SystemExit(f"{args.run}: its model has no intent centers in the query's space")
    split = Split(rec.data, rec.cfg.data.max_len)
    rows = []
    for nearest in ("pooled", "last"):
        for lam in args.lams:
            if lam == 0 and nearest == "last":
                continue  # the same as pooled at 0: the unshifted query
            got = metrics_from_ranks(shifted_ranks(rec, split, "valid", lam, nearest))
            rows.append({"nearest": nearest, "lam": lam, **{m: got[m] for m in METRICS}})
            print(rows[-1], flush=True)
    cmd = command()
    md = [
        f"# Intent-shifted scoring, `{args.run}` (validation)",
        "",
        f"`{cmd}`",
        "",
        "| nearest center of | lam | " + " | ".join(METRICS) + " |",
        "|---|---|" + "---|" * len(METRICS),
    ]
    md += [
        f"| {r['nearest']} | {r['lam']} | " + " | ".join(f"{r[m]:.4f}" for m in METRICS) + " |"
        for r in rows
    ]
    payload = {"command": cmd, "environment": environment(), "run": str(args.run), "valid": rows}
    write_results(f"intent_scoring_{args.tag}", payload, "\n".join(md) + "\n", RESULTS / "probes")


if __name__ == "__main__":
    main()
