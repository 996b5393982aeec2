"""Compare finished (or stopped) run folders side by side: the options that
differ between them, their validation curves, best epochs and test metrics.

    python benchmarks/compare_runs.py --tag prefixes_beauty_seed1 \\
        --title "Per-prefix samples, Beauty, seed 1" \\
        "SASRec-CE, windows=benchmarks/grid/windows/fast/beauty/SASRec-CE/seed1" \\
        "SASRec-CE, prefixes=benchmarks/work/probes/sasrec_ce_prefixes_beauty_s1"

Writes benchmarks/results/probes/<tag>.{json,md} (or <out>/<tag>.*).  Each folder's own
config.json says how it was trained (``elcrec train --config`` repeats it).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, environment, write_results  # noqa: E402

from elcrec import RunConfig  # noqa: E402
from elcrec.paper import METRICS  # noqa: E402


def flat_identity(run_dir: Path) -> dict:
    raw = RunConfig.load(run_dir / "config.json").identity()
    return {
        f"{section}.{key}": value
        for section, values in raw.items()
        if isinstance(values, dict)
        for key, value in values.items()
    }


def summarize(run_dir: Path) -> dict:
    records = [json.loads(x) for x in (run_dir / "metrics.jsonl").read_text().splitlines()]
    curve = [round(r["valid/NDCG@20"], 4) for r in records]
    best = max(range(len(curve)), key=curve.__getitem__) if curve else None
    test_path = run_dir / "test_metrics.json"
    test = json.loads(test_path.read_text())["test"] if test_path.exists() else None
    return {
        "folder": str(run_dir),
        "epochs_run": len(records),
        "best_epoch": best,
        "best_valid_ndcg20": None if best is None else curve[best],
        "train_s_per_epoch": round(statistics.median(r["train_s"] for r in records), 1)
        if records
        else None,
        "finished": test is not None,
        "test": None if test is None else {m: round(test[m], 4) for m in METRICS},
        "valid_ndcg20_by_epoch": curve,
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tag", required=True)
    ap.add_argument("--title", required=True)
    ap.add_argument("--note", default="", help="a paragraph under the table")
    ap.add_argument("--out", default=str(RESULTS / "probes"), help="folder of the tables")
    ap.add_argument("runs", nargs="+", metavar="LABEL=RUN_DIR")
    args = ap.parse_args()
    runs = {}
    for item in args.runs:
        label, sep, folder = item.rpartition("=")
        if not sep or not label:
            ap.error(f"{item!r}: expected LABEL=RUN_DIR")
        if not (Path(folder) / "metrics.jsonl").exists():
            ap.error(f"{folder}: no metrics.jsonl (not a run folder)")
        runs[label] = Path(folder)
    options = {label: flat_identity(d) for label, d in runs.items()}
    keys = sorted({k for o in options.values() for k in o})
    differ = [k for k in keys if len({json.dumps(o.get(k)) for o in options.values()}) > 1]
    summaries = {label: summarize(d) for label, d in runs.items()}
    payload = {
        "command": command(),
        "environment": environment(),
        "title": args.title,
        "options_that_differ": {
            label: {k: options[label].get(k) for k in differ} for label in runs
        },
        "runs": summaries,
    }
    columns = ["run", *differ, "epochs", "best epoch", "best valid NDCG@20", "s/epoch", *METRICS]
    head = "| " + " | ".join(columns) + " |"
    lines = [f"# {args.title}", "", f"Command: `{payload['command']}`  "]
    env = payload["environment"]
    lines += [f"Machine: {env['machine']}; torch {env['torch']}", "", head]
    lines.append("|---" * len(columns) + "|")
    for label, s in summaries.items():
        cells = [str(options[label].get(k)) for k in differ]
        test = s["test"] or {}
        cells += [str(s["epochs_run"]), str(s["best_epoch"]), f"{s['best_valid_ndcg20']}"]
        cells += [str(s["train_s_per_epoch"])]
        # a search trial never evaluates the test set; any other run without it was stopped
        missing = "(no test)" if options[label].get("train.evaluate_test") is False else "(stopped)"
        cells += [f"{test[m]:.4f}" if m in test else missing for m in METRICS]
        lines.append(f"| {label} | " + " | ".join(cells) + " |")
    lines += ["", "Validation NDCG@20 by epoch:", ""]
    for label, s in summaries.items():
        lines.append(f"- {label}: " + " ".join(f"{v:.4f}" for v in s["valid_ndcg20_by_epoch"]))
    if args.note:
        lines += ["", args.note]
    write_results(args.tag, payload, "\n".join(lines) + "\n", Path(args.out))
    print(f"wrote {Path(args.out) / args.tag}.{{json,md}}")


if __name__ == "__main__":
    main()
