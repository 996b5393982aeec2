"""The accurate models at a fraction of their time: each row compares a model
on a dataset as it trained before (the baseline grid cells, 3 seeds) with how
it trains now (the new cells, 3 seeds, each a full run with early stopping on
the machine alone), on wall time and on every test metric, then user by user.

    python benchmarks/time_to_accuracy.py
    python benchmarks/time_to_accuracy.py --row MODEL,DATASET,BEFORE,NOW [--row ...]

A row is ``MODEL,DATASET,BASELINE_GROUP,NEW_GROUP``; a group is a folder of
seed<N> cells (their test_metrics.json and test_ranks.npz, as the grid keeps
them).  Without --row the four rows of the issue are read from their grid
folders.  ``wall_s`` is each run's own total of epoch times (training and
validation, as ``test_metrics.json`` records it).  The bar: ``wall_s`` at most
a quarter of the baseline's, every test mean at least 0.99 of the baseline's,
and the paired per-user difference (paired_runs.py) not below zero beyond its
95 % interval.  Writes benchmarks/results/time_to_accuracy.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from attach_reruns import GRID, RERUNS  # noqa: E402
from common import RESULTS, command, environment, write_results  # noqa: E402
from paired_runs import METRICS, compare, group_metrics, run_folders  # noqa: E402

# (model, dataset as in table1.csv, grid dataset, the preset before, the preset now)
ROWS = [
    ("SASRec-CE", "Beauty", "beauty", "fast-v1", "fast"),
    ("SASRec-CE", "Toys_and_Games", "toys", "fast-v1", "fast"),
    ("ELCRec+", "Beauty", "beauty", "plus-v1", "plus"),
    ("ELCRec+", "Toys_and_Games", "toys", "plus-v1", "plus"),
]
WALL_BAR, TEST_BAR = 0.25, 0.99


def default_rows() -> list[tuple[str, str, Path, Path]]:
    return [
        (model, name, GRID / old / key / model, GRID / new / key / model)
        for model, name, key, old, new in ROWS
    ]


def group_summary(folder: Path) -> dict:
    """Means over the group's seeds of wall time and the test metrics."""
    runs = [json.loads((r / "test_metrics.json").read_text()) for r in run_folders(folder)]
    if not runs:
        raise SystemExit(f"{folder}: no finished runs")
    return {
        "n_seeds": len(runs),
        "seeds": [r["seed"] for r in runs],
        "wall_s_per_seed": [round(r["wall_s"], 1) for r in runs],
        "wall_s": statistics.mean(r["wall_s"] for r in runs),
        "epochs_run": [r["epochs_run"] for r in runs],
        "best_epoch": [r["best_epoch"] for r in runs],
        "device": sorted({r["device"] for r in runs}),
        "test": {m: statistics.mean(r["test"][m] for r in runs) for m in METRICS},
    }


def ranked_runs(folder: Path) -> dict[str, Path]:
    """The group's runs with per-user test ranks, by seed folder name: the
    cell's own, else those of a rerun of it that did not reproduce it exactly
    (kept by attach_reruns.py under grid/reruns/)."""
    found = {r.name: r for r in run_folders(folder) if (r / "test_ranks.npz").exists()}
    try:
        reruns = GRID / RERUNS / folder.resolve().relative_to(GRID)
    except ValueError:  # a group outside the grid has no reruns
        return found
    for rerun in reruns.glob("seed*/test_ranks.npz"):
        found.setdefault(rerun.parent.name, rerun.parent)
    return found


def paired_or_none(
    baseline: Path, new: Path, n_boot: int
) -> tuple[dict | None, list[str], list[str]]:
    """The per-user comparison over the seeds both groups hold ranks for (a
    baseline cell from before test_ranks.npz existed has none unless rerun),
    those seeds, and those whose baseline ranks come from a rerun that did
    not reproduce the cell exactly; None when they share no seed."""
    before, now = ranked_runs(baseline), ranked_runs(new)
    seeds = sorted(before.keys() & now.keys())
    if not seeds:
        print(f"no paired comparison for {new}: no seed with ranks on both sides", file=sys.stderr)
        return None, [], []
    groups = (
        group_metrics(label, [g[s] for s in seeds])
        for label, g in (("before", before), ("now", now))
    )
    reran = [s for s in seeds if before[s].resolve().parent != baseline.resolve()]
    return compare(*groups, n_boot, 0), seeds, reran


def row(model: str, dataset: str, baseline: Path, new: Path, n_boot: int) -> dict:
    old, now = group_summary(baseline), group_summary(new)
    paired, paired_seeds, rerun_seeds = paired_or_none(baseline, new, n_boot)
    ratio = now["wall_s"] / old["wall_s"]
    test_ratio = {m: now["test"][m] / old["test"][m] for m in METRICS}
    return {
        "model": model,
        "dataset": dataset,
        "baseline_group": str(baseline),
        "group": str(new),
        "baseline_wall_s": round(old["wall_s"], 1),
        "wall_s": round(now["wall_s"], 1),
        "wall_ratio": round(ratio, 4),
        "baseline_test": {m: round(v, 5) for m, v in old["test"].items()},
        "test": {m: round(v, 5) for m, v in now["test"].items()},
        "test_ratio": {m: round(v, 4) for m, v in test_ratio.items()},
        "paired_seeds": paired_seeds,
        "paired_seeds_from_reruns": rerun_seeds,
        "paired": None
        if paired is None
        else {
            m: {"difference": p["difference"], "ci95": p["ci95"], "relative": p["relative"]}
            for m, p in paired.items()
        },
        "baseline_runs": old,
        "runs": now,
        "wall_met": ratio <= WALL_BAR,
        "test_met": all(v >= TEST_BAR for v in test_ratio.values()),
        # None: not measurable (the baseline's per-user ranks are gone)
        "paired_no_loss": None
        if paired is None
        else all(p["ci95"][1] >= 0 for p in paired.values()),
    }


def markdown(rows: list[dict], cmd: str) -> str:
    lines = [
        "# Time to accuracy: the accurate models before and now",
        "",
        f"`{cmd}`",
        "",
        f"Means over seeds.  Bar: wall ≤ {WALL_BAR} × before, every test mean ≥ {TEST_BAR} × "
        "before, and no paired per-user loss beyond the 95 % interval.",
        "",
        "| model | dataset | wall before (s) | wall now (s) | ratio | epochs now (best) "
        "| HR@5 | HR@20 | NDCG@5 | NDCG@20 | wall met | tests met | paired: no loss |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        epochs = ", ".join(
            f"{e} ({b})" for e, b in zip(r["runs"]["epochs_run"], r["runs"]["best_epoch"])
        )
        tests = " | ".join(f"{r['baseline_test'][m]:.4f} → {r['test'][m]:.4f}" for m in METRICS)
        verdicts = " | ".join(
            {True: "yes", False: "no", None: "—"}[r[k]]
            for k in ("wall_met", "test_met", "paired_no_loss")
        )
        lines.append(
            f"| {r['model']} | {r['dataset']} | {r['baseline_wall_s']:.0f} | {r['wall_s']:.0f} "
            f"| {r['wall_ratio']:.3f} | {epochs} | {tests} | {verdicts} |"
        )
    lines += [
        "",
        "Paired per-user differences (now minus before, 95 % bootstrap interval over users):",
        "",
        "| model | dataset | seeds | " + " | ".join(METRICS) + " |",
        "|---|---|---|" + "---|" * len(METRICS),
    ]
    for r in rows:
        if r["paired"] is None:
            cells = ["—"] * len(METRICS)
        else:
            cells = [
                f"{p['difference']:+.4f} [{p['ci95'][0]:+.4f}, {p['ci95'][1]:+.4f}]"
                for p in (r["paired"][m] for m in METRICS)
            ]
        seeds = (
            ", ".join(
                s.removeprefix("seed") + ("ʳ" if s in r["paired_seeds_from_reruns"] else "")
                for s in r["paired_seeds"]
            )
            or "—"
        )
        lines.append(f"| {r['model']} | {r['dataset']} | {seeds} | " + " | ".join(cells) + " |")
    lines += [
        "",
        "Seeds: those both sides hold per-user ranks (test_ranks.npz) for; the baseline "
        "cells predate that file, and a seed of theirs has ranks once rerun (`elcrec "
        "benchmark --preset fast-v1 ...` / `plus-v1`, then `benchmarks/attach_reruns.py`).  "
        "ʳ: the rerun did not reproduce the cell to the last digit (another CPU or "
        "thread count), so the pair reads the rerun's ranks (grid/reruns/) while the row "
        "above keeps the committed cell's numbers.  — : no such seed.",
    ]
    lines += ["", "Devices: " + "; ".join(sorted({d for r in rows for d in r["runs"]["device"]}))]
    return "\n".join(lines) + "\n"


def parse_row(text: str) -> tuple[str, str, Path, Path]:
    parts = text.split(",")
    if len(parts) != 4:
        raise argparse.ArgumentTypeError(f"{text!r}: expected MODEL,DATASET,BASELINE,NEW")
    return parts[0], parts[1], Path(parts[2]), Path(parts[3])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--row", type=parse_row, action="append", help="MODEL,DATASET,BEFORE,NOW")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    rows = [row(*r, args.boot) for r in (args.row or default_rows())]
    cmd = command()
    payload = {
        "command": cmd,
        "environment": environment(),
        "bars": {"wall_ratio_max": WALL_BAR, "test_ratio_min": TEST_BAR},
        "rows": rows,
    }
    write_results("time_to_accuracy", payload, markdown(rows, cmd), args.out)
    print(markdown(rows, cmd))


if __name__ == "__main__":
    main()
