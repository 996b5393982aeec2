"""The faithful path on Beauty: the exact `paper` preset, run to its end,
beside the authors' own retrain and their released checkpoint.

    elcrec train --preset paper --data beauty --seed 1 --run-dir WORK/faithful/seed1
    python benchmarks/faithful_beauty.py 1=WORK/faithful/seed1 [2=...] \\
        [--authors-curve FILE] [--earlier LABEL=metrics.jsonl ...]

Reads each run folder (finished or still running: its metrics.jsonl, and
test_metrics.json once it has one) and writes benchmarks/results/
faithful_beauty.{json,md,png}: per seed the epochs run, the best validation
epoch and metrics, the test metrics under both history maskings and the
wall time; every epoch's validation metrics (the curve, kept in the JSON);
the curve epoch by epoch beside the authors' curve (the CSV their code
printed; default ``$ELCREC_REFERENCE_DIR/authors_curve_beauty_seed1.csv``,
copied into the JSON) and the level of their released checkpoint.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, environment, write_results  # noqa: E402

from elcrec.runs import RunFolder  # noqa: E402

METRICS = ("HR@5", "NDCG@5", "HR@20", "NDCG@20")
# The authors' released Beauty checkpoint under their own evaluation (their
# README; re-evaluated with their code): validation, and test = the paper.
RELEASED = {
    "valid": {"HR@5": 0.0670, "NDCG@5": 0.0451, "HR@20": 0.1312, "NDCG@20": 0.0632},
    "test": {"HR@5": 0.0529, "NDCG@5": 0.0355, "HR@20": 0.1079, "NDCG@20": 0.0509},
}
AUTHORS_COLUMNS = {"HIT@5": "HR@5", "NDCG@5": "NDCG@5", "HIT@20": "HR@20", "NDCG@20": "NDCG@20"}


def read_authors_curve(path: Path) -> list[dict]:
    """Their printed log: epoch, rec_avg_loss, joint_avg_loss and validation metrics."""
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [
        {
            "epoch": int(r["epoch"]),
            "loss/next_item": float(r["rec_avg_loss"]),
            "loss/total": float(r["joint_avg_loss"]),
            **{f"valid/{ours}": float(r[theirs]) for theirs, ours in AUTHORS_COLUMNS.items()},
        }
        for r in rows
    ]


def curve_of(records: list[dict]) -> list[dict]:
    keys = ("loss/next_item", "loss/total", *(f"valid/{m}" for m in METRICS))
    return [{"epoch": r["epoch"], **{k: r[k] for k in keys if k in r}} for r in records]


def summarize(seed: int, folder: RunFolder) -> dict:
    records = folder.epochs()
    if not records:
        raise SystemExit(f"{folder.path}: no finished epoch yet (metrics.jsonl)")
    best = max(records, key=lambda r: r["valid/NDCG@20"])
    out = {
        "seed": seed,
        "finished": folder.finished(),
        "epochs_run": len(records),
        "best_epoch": best["epoch"],
        "best_valid": {m: best[f"valid/{m}"] for m in METRICS},
        "wall_s": round(sum(r["train_s"] + r["eval_s"] for r in records), 1),
        "train_s_per_epoch": round(sum(r["train_s"] for r in records) / len(records), 1),
        "config": folder.config().identity(),
        "curve": curve_of(records),
    }
    if folder.finished():
        result = folder.test_metrics()
        out["test"] = {
            mask: {m: values[m] for m in METRICS}
            for mask, values in result["test_by_history_mask"].items()
        }
        out["device"] = result["device"]
        out["wall_s"] = round(result["wall_s"], 1)
        out["verdict"] = verdict(out["best_valid"], out["test"]["zero"])
    return out


def verdict(valid: dict, test: dict) -> dict:
    """Ours over the released checkpoint: validation against its validation,
    test (the authors' zero masking) against the published column; the issue's
    bar is every test number within 3 %."""
    return {
        "valid_vs_checkpoint": {m: round(valid[m] / RELEASED["valid"][m], 4) for m in METRICS},
        "test_vs_published": {m: round(test[m] / RELEASED["test"][m], 4) for m in METRICS},
        "test_within_3pct": {m: abs(test[m] / RELEASED["test"][m] - 1) <= 0.03 for m in METRICS},
    }


def side_by_side(ours: dict[str, list[dict]], authors: list[dict], every: int = 4) -> list[str]:
    """Validation NDCG@20 and the next-item loss, epoch by epoch (every ``every``)."""
    by_epoch = {label: {r["epoch"]: r for r in c} for label, c in ours.items()}
    theirs = {r["epoch"]: r for r in authors}
    last = max([max(c) for c in by_epoch.values()] + [max(theirs, default=0)])
    labels = list(ours)
    lines = [
        "| epoch | authors' code: NDCG@20 | "
        + " | ".join(f"{label}: NDCG@20" for label in labels)
        + " | authors' code: next-item loss | "
        + " | ".join(f"{label}: next-item loss" for label in labels)
        + " |",
        "|---|" + "---|" * (2 * len(labels) + 2),
    ]

    def cell(table, e, key):
        return f"{table[e][key]:.4f}" if e in table and key in table[e] else ""

    for e in range(0, last + 1):
        if e % every and e != last:
            continue
        lines.append(
            f"| {e} | {cell(theirs, e, 'valid/NDCG@20')} | "
            + " | ".join(cell(by_epoch[label], e, "valid/NDCG@20") for label in labels)
            + f" | {cell(theirs, e, 'loss/next_item')} | "
            + " | ".join(cell(by_epoch[label], e, "loss/next_item") for label in labels)
            + " |"
        )
    return lines


def plot(ours: dict[str, list[dict]], authors: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5), dpi=110)
    ax.plot(
        [r["epoch"] for r in authors],
        [r["valid/NDCG@20"] for r in authors],
        color="black",
        lw=2,
        label="authors' code, retrained (seed 1, CPU)",
    )
    for label, curve in ours.items():
        ax.plot([r["epoch"] for r in curve], [r["valid/NDCG@20"] for r in curve], label=label)
    ax.axhline(
        RELEASED["valid"]["NDCG@20"],
        color="grey",
        ls="--",
        label="authors' released checkpoint (validation)",
    )
    ax.set(xlabel="epoch", ylabel="validation NDCG@20", title="Beauty, the exact `paper` path")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path)
    plt.close(fig)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="+", metavar="SEED=RUN_DIR")
    parser.add_argument("--authors-curve", help="the CSV the authors' code printed")
    parser.add_argument(
        "--earlier",
        nargs="*",
        default=[],
        metavar="LABEL=JSONL",
        help="earlier curves of this path to draw beside (metrics.jsonl lines)",
    )
    args = parser.parse_args()
    reference = os.environ.get("ELCREC_REFERENCE_DIR", "")
    authors_path = Path(args.authors_curve or Path(reference) / "authors_curve_beauty_seed1.csv")
    authors = read_authors_curve(authors_path) if authors_path.is_file() else []
    seeds = []
    for item in args.runs:
        seed, _, run = item.partition("=")
        seeds.append(summarize(int(seed), RunFolder(run)))
    curves = {f"paper preset, seed {s['seed']}": s["curve"] for s in seeds}
    for item in args.earlier:
        label, _, path = item.partition("=")
        lines = Path(path).read_text().splitlines()
        curves[label] = curve_of([json.loads(x) for x in lines if x.strip()])

    md = [
        "# The faithful path on Beauty: the exact `paper` preset to its end",
        "",
        f"Command: `{command()}`",
        "",
        "| seed | finished | epochs run | best epoch | best valid HR@5 / NDCG@5 / HR@20 / NDCG@20 "
        "| test (neg_inf) | test (zero, the authors') | wall (s) | s per epoch |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for s in seeds:
        fmt = " / ".join(f"{s['best_valid'][m]:.4f}" for m in METRICS)
        tests = [
            " / ".join(f"{s['test'][mask][m]:.4f}" for m in METRICS) if "test" in s else "—"
            for mask in ("neg_inf", "zero")
        ]
        md.append(
            f"| {s['seed']} | {s['finished']} | {s['epochs_run']} | {s['best_epoch']} | {fmt} "
            f"| {tests[0]} | {tests[1]} | {s['wall_s']} | {s['train_s_per_epoch']} |"
        )
    released = " / ".join(f"{RELEASED['valid'][m]:.4f}" for m in METRICS)
    paper = " / ".join(f"{RELEASED['test'][m]:.4f}" for m in METRICS)
    md += [
        "",
        f"The authors' released checkpoint: validation {released}; test {paper} "
        "(the published column), both under their evaluation (zero masking).",
        "",
    ]
    for s in seeds:
        if "verdict" not in s:
            continue
        v = s["verdict"]
        ratios = ", ".join(
            f"{m} {100 * v['test_vs_published'][m]:.1f} %"
            + ("" if v["test_within_3pct"][m] else " (beyond 3 %)")
            for m in METRICS
        )
        valid = ", ".join(f"{m} {100 * v['valid_vs_checkpoint'][m]:.1f} %" for m in METRICS)
        md.append(
            f"Seed {s['seed']}, ours over the checkpoint: validation {valid}; "
            f"test over the published column {ratios}."
        )
    md += [
        "",
        "## The curve beside the authors' retrain",
        "",
        *side_by_side(curves, authors),
        "",
        "![curve](faithful_beauty.png)",
        "",
    ]
    payload = {
        "seeds": seeds,
        "released_checkpoint": RELEASED,
        "authors_curve": authors,
        "earlier_curves": {k: v for k, v in curves.items() if not k.startswith("paper preset")},
        "command": command(),
        **environment(),
    }
    write_results("faithful_beauty", payload, "\n".join(md))
    plot(curves, authors, RESULTS / "faithful_beauty.png")
    print("\n".join(md[:10]))


if __name__ == "__main__":
    main()
