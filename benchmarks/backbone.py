"""The frequency-filter encoder reproduced: our BSARec against its published
numbers.

    elcrec benchmark --preset fast --models BSARec --datasets beauty --seeds 1 2 3
    python benchmarks/backbone.py

Built from the grid cells benchmarks/grid/fast/<dataset>/BSARec/seed<N>
(nothing is trained here).  Writes benchmarks/results/backbone.{csv,json,md}:
one row per dataset and metric with the mean and std over seeds, the
published number where there is one, and their ratio; the bar is each Beauty
number within 3 % of the published one.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, environment, write_results  # noqa: E402

from elcrec.benchmark import collect, table1, write_csv  # noqa: E402

GRID = Path(__file__).resolve().parent / "grid"
PRESET, MODEL = "fast", "BSARec"
# Beauty: BSARec's authors' committed log (Shin et al., AAAI 2024; repository
# yehjin-shin/BSARec), test at the best validation epoch.  Sports and Toys:
# their paper's Table 2 as Papers with Code lists it (no NDCG there; those
# cells compare with nothing).
PUBLISHED = {
    "Beauty": {"HR@5": 0.0736, "HR@20": 0.1373, "NDCG@5": 0.0523, "NDCG@20": 0.0703},
    "Sports_and_Outdoors": {"HR@5": 0.0426, "HR@20": 0.0858},
    "Toys_and_Games": {"HR@5": 0.0805},
}
TOLERANCE = 0.03
COLUMNS = ("model", "dataset", "metric", "mean", "std", "n_seeds", "published", "ratio")


def cells(grid: Path) -> list[dict]:
    return [r for r in collect(grid, PRESET) if r["model"] == MODEL]


def rows(runs: list[dict]) -> list[dict]:
    out = []
    for r in table1(runs):
        published = PUBLISHED.get(r["dataset"], {}).get(r["metric"])
        out.append(
            {
                **{k: r[k] for k in COLUMNS[:6]},
                "published": "" if published is None else published,
                "ratio": "" if published is None else round(r["mean"] / published, 4),
            }
        )
    return out


def within(row: dict) -> bool | None:
    """Within the tolerance of the published number; None where there is none."""
    return None if row["ratio"] == "" else abs(row["ratio"] - 1) <= TOLERANCE


def markdown(table: list[dict], runs: list[dict], cmd: str) -> str:
    lines = [
        "# Our BSARec against its published numbers (`--preset fast`)",
        "",
        f"`{cmd}`",
        "",
        "Test, mean ± std over seeds; published: the authors' Beauty log, and their "
        "paper's Sports and Toys numbers where listed.  Bar (Beauty): within "
        f"{TOLERANCE:.0%} of each published number.",
        "",
        "| dataset | metric | seeds | ours | published | ratio | within |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in table:
        pub = "—" if r["published"] == "" else f"{r['published']:.4f}"
        ratio = "—" if r["ratio"] == "" else f"{r['ratio']:.3f}"
        ok = {True: "yes", False: "no", None: "—"}[within(r)]
        lines.append(
            f"| {r['dataset']} | {r['metric']} | {r['n_seeds']} | {r['mean']:.4f} ± "
            f"{r['std']:.4f} | {pub} | {ratio} | {ok} |"
        )
    lines += [
        "",
        "Per seed (the step's precision: bf16 where the processor has bf16 units, fp32 "
        "where it would be emulated; the model and loss are the same):",
        "",
        "| dataset | seed | HR@5 | HR@20 | NDCG@5 | NDCG@20 | best epoch | epochs | wall (s) "
        "| device | precision |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        lines.append(
            f"| {r['dataset']} | {r['seed']} | {r['HR@5']:.4f} | {r['HR@20']:.4f} | "
            f"{r['NDCG@5']:.4f} | {r['NDCG@20']:.4f} | {r['best_epoch']} | {r['epochs_run']} | "
            f"{r['wall_s']:.0f} | {r['device']} | {r['precision']} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=Path, default=GRID, help="the grid cells' summaries")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    runs = cells(args.grid)
    table = rows(runs)
    if not table:
        raise SystemExit(f"{args.grid / PRESET}/*/{MODEL}: no finished cells")
    cmd = command()
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "backbone.csv", table)
    payload = {
        "command": cmd,
        "environment": environment(),
        "tolerance": TOLERANCE,
        "rows": table,
        "cells": runs,
    }
    write_results("backbone", payload, markdown(table, runs, cmd), args.out)
    print(markdown(table, runs, cmd))


if __name__ == "__main__":
    main()
