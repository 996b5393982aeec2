"""A search on one's own file inside a wall-clock budget, then its preset trained.

    python benchmarks/tune_own_data.py --minutes 5 --epochs 2

In a scratch folder: the built-in synthetic data written as a CSV log
(`elcrec data synthetic --export clicks.csv`), `elcrec tune --data clicks.csv
--minutes M` (the wall time of the whole command is measured against M), then
`elcrec train --data clicks.csv --preset <its preset.json> --epochs E`.
Writes benchmarks/results/tune_own_data.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, write_results  # noqa: E402


def run(args: list[str], cwd: Path, env: dict) -> tuple[float, str]:
    start = time.monotonic()
    done = subprocess.run(
        [sys.executable, "-m", "elcrec.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
    )
    if done.returncode != 0:
        sys.exit(f"elcrec {' '.join(args)} failed:\n{done.stderr[-3000:]}")
    return time.monotonic() - start, done.stdout


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=5.0)
    ap.add_argument("--epochs", type=int, default=2, help="epochs of the final training run")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    scratch = Path(tempfile.mkdtemp(prefix="elcrec-tune-own-"))
    env = {**os.environ, "ELCREC_WORK": str(scratch / "work")}
    threads = ["--threads", str(args.threads)]
    run(["data", "synthetic", "--export", "clicks.csv"], scratch, env)
    tune_s, _ = run(
        ["tune", "--data", "clicks.csv", "--minutes", str(args.minutes), *threads], scratch, env
    )
    search = scratch / "work" / "tune" / "clicks"
    best = json.loads((search / "best.json").read_text())
    preset_file = json.loads((search / "preset.json").read_text())
    train_s, table = run(
        [
            "train", "--data", "clicks.csv", "--preset", str(search / "preset.json"),
            "--epochs", str(args.epochs), "--json", *threads,
        ],
        scratch,
        env,
    )  # fmt: skip
    result = json.loads(table)
    payload = {
        "budget_minutes": args.minutes,
        "tune_wall_s": round(tune_s, 1),
        "inside_budget": tune_s <= args.minutes * 60,
        # trials that trained an epoch or more (the search lays out every folder)
        "trials_run": sum(1 for t in search.glob("trial*/metrics.jsonl") if t.stat().st_size),
        "trials_finished": best["trials_finished"],
        "best_trial": best["best_trial"],
        "valid_NDCG@20": best["valid_NDCG@20"],
        "preset_file": preset_file,
        "train_wall_s": round(train_s, 1),
        "train_epochs": result["epochs_run"],
        "test": result["test"],
        "command": command(),
        **environment(),
    }
    md = [
        "# `elcrec tune --data FILE --minutes M`, then its preset trained",
        "",
        f"Command: `{command()}` (synthetic data, 6,000 users, written as a CSV log)",
        "",
        f"- tune: {payload['tune_wall_s']} s for a budget of {args.minutes * 60:.0f} s "
        f"(inside: {payload['inside_budget']}); {payload['trials_run']} of the budget's "
        "trials ran, "
        f"{payload['trials_finished']} finished; chosen trial {payload['best_trial']}, "
        f"validation NDCG@20 {payload['valid_NDCG@20']}",
        f"- train with the preset file, {payload['train_epochs']} epochs: "
        f"{payload['train_wall_s']} s; test NDCG@20 {result['test']['NDCG@20']:.4f}, "
        f"HR@20 {result['test']['HR@20']:.4f}",
        f"- origin recorded in the run's config: {preset_file['origin']}",
        "",
    ]
    write_results("tune_own_data", payload, "\n".join(md))
    print("\n".join(md))


if __name__ == "__main__":
    main()
