"""ELCRec against ICLRec, same machine, one sitting, each benchmark: seconds
per training epoch (ICLRec's k-means over all users included), seconds per
validation pass, peak RSS, and time to the best validation epoch (from the
finished grid cells in benchmarks/grid, when there are any), next to the
paper's Table 2 (one RTX 4090, whole runs).

    python benchmarks/efficiency.py --preset paper --epochs 2
    python benchmarks/efficiency.py --preset fast --epochs 3

Each (dataset, model) runs in its own process, one after another.  Writes
benchmarks/results/efficiency_probe_<preset>.{csv,json,md}.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, environment, time_epochs, write_results  # noqa: E402

from elcrec._io import atomic_write_text  # noqa: E402
from elcrec.benchmark import Cell  # noqa: E402
from elcrec.config import BENCHMARKS  # noqa: E402
from elcrec.models import REGISTRY  # noqa: E402
from elcrec.paper import TABLE2  # noqa: E402

GRID = Path(__file__).resolve().parent / "grid"


def time_to_best(preset_name: str, dataset: str, model: str) -> float | None:
    """Mean over finished grid cells of the wall time up to the best epoch."""
    times = []
    for result in (GRID / preset_name / dataset / model).glob("seed*/test_metrics.json"):
        times.append(json.loads(result.read_text())["time_to_best_s"])
    return sum(times) / len(times) if times else None


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--preset", default="paper", choices=["paper", "fast"])
    ap.add_argument("--epochs", type=int, default=2)
    ap.add_argument("--datasets", nargs="+", default=list(BENCHMARKS))
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--only", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        dataset, model = args.only
        cfg = Cell(model, dataset, 1).config(args.preset, {})
        if args.data_dir:
            cfg = cfg.replace(**{"data.data_dir": args.data_dir})
        print(json.dumps(time_epochs(cfg, args.epochs)))
        return
    rows = []
    for dataset in args.datasets:
        for model in ("ICLRec", "ELCRec"):
            cmd = [sys.executable, __file__, "--only", dataset, model]
            cmd += ["--preset", args.preset, "--epochs", str(args.epochs)]
            if args.data_dir:
                cmd += ["--data-dir", args.data_dir]
            print(f"== {dataset} {model}", flush=True)
            out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
            r = json.loads(out.strip().splitlines()[-1])
            paper_s, paper_mb = TABLE2[BENCHMARKS[dataset]][model]
            best = time_to_best(args.preset, dataset, model)
            rows.append(
                {
                    "dataset": BENCHMARKS[dataset],
                    "model": model,
                    "train_epoch_s": round(r["train_epoch_s"], 2),
                    "eval_pass_s": round(r["eval_pass_s"], 2),
                    "peak_rss_mb": round(r["peak_rss_mb"]),
                    "time_to_best_s": "" if best is None else round(best),
                    "epochs_timed": r["epochs"],
                    "paper_time_s": paper_s,
                    "paper_gpu_mb": paper_mb,
                }
            )
            print(rows[-1], flush=True)
    # (efficiency.{csv,md} are the grid runs' own times: benchmarks/table1_fast.py)
    name = f"efficiency_probe_{args.preset}"
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(RESULTS / f"{name}.csv", buf.getvalue())
    md = [
        f"# Efficiency: ICLRec vs ELCRec, preset `{args.preset}`",
        "",
        f"Command: `{command()}`  ",
        f"Machine: {environment()['machine']}; torch {environment()['torch']}",
        "",
        "| dataset | model | train epoch (s) | validation (s) | peak RSS (MB) | time to best (s) "
        "| paper: training time (s) | paper: GPU memory (MB) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        md.append(
            f"| {r['dataset']} | {r['model']} | {r['train_epoch_s']} | {r['eval_pass_s']} | "
            f"{r['peak_rss_mb']} | {r['time_to_best_s'] or 'n/a'} | {r['paper_time_s']} | "
            f"{r['paper_gpu_mb']} |"
        )
    md += ["", "ELCRec / ICLRec per training epoch:"]
    for dataset in args.datasets:
        pair = {r["model"]: r for r in rows if r["dataset"] == BENCHMARKS[dataset]}
        ours = pair["ELCRec"]["train_epoch_s"] / pair["ICLRec"]["train_epoch_s"] - 1
        paper = TABLE2[BENCHMARKS[dataset]]
        theirs = paper["ELCRec"][0] / paper["ICLRec"][0] - 1
        md.append(f"- {BENCHMARKS[dataset]}: ours {ours:+.1%}, paper {theirs:+.1%} (whole runs)")
    md.append("")
    payload = {
        "rows": rows,
        "preset": args.preset,
        "models": {m: REGISTRY[m].options for m in ("ICLRec", "ELCRec")},
        "command": command(),
        **environment(),
    }
    write_results(name, payload, "\n".join(md))


if __name__ == "__main__":
    main()
