"""Seconds per training epoch, seconds per full-ranking validation pass and peak
RSS on Beauty with the paper's hyper-parameters (issue 2, speed bar).

    python benchmarks/speed_beauty.py --epochs 4

Each option set runs in its own process (so peak RSS is its own), trains
``--epochs`` epochs from scratch, and reports the median epoch time over the
epochs after the first and the median validation time.  Writes
benchmarks/results/speed_beauty.{json,md}.  Run it on an otherwise idle machine.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, time_epochs, write_results  # noqa: E402

# name -> (preset, overrides, epochs override or None)
OPTION_SETS = {
    "fast": ("fast", {}, None),
    "paper (faithful)": ("paper", {}, 2),
}
AUTHORS = {"train_epoch_s": "49-57", "eval_pass_s": "3.9-4.8", "peak_rss_mb": "2300"}
BAR = {"train_epoch_s": 8.0, "eval_pass_s": 1.0, "peak_rss_mb": 1500}


def one(preset_name: str, overrides: dict, epochs: int, data_dir: str | None) -> dict:
    from elcrec import preset

    cfg = preset(preset_name, "beauty").replace(**overrides)
    if data_dir:
        cfg = cfg.replace(**{"data.data_dir": data_dir})
    return time_epochs(cfg, epochs)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--only", default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.only:
        preset_name, overrides, epochs = OPTION_SETS[args.only]
        print(json.dumps(one(preset_name, overrides, epochs or args.epochs, args.data_dir)))
        return
    rows = {}
    for name in OPTION_SETS:
        cmd = [sys.executable, __file__, "--only", name, "--epochs", str(args.epochs)]
        if args.data_dir:
            cmd += ["--data-dir", args.data_dir]
        print(f"== {name}", flush=True)
        out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        rows[name] = json.loads(out.strip().splitlines()[-1])
        print({k: v for k, v in rows[name].items() if k != "options"}, flush=True)
    main_row = rows["fast"]
    payload = {
        "train_epoch_s": main_row["train_epoch_s"],
        "eval_pass_s": main_row["eval_pass_s"],
        "peak_rss_mb": main_row["peak_rss_mb"],
        "options": main_row["options"],
        "option_sets": rows,
        "authors_code_here": AUTHORS,
        "bar": BAR,
        "meets_speed_bar": all(main_row[k] <= BAR[k] for k in BAR),
        "command": command(),
        **environment(),
    }
    lines = [
        "# Beauty speed (paper hyper-parameters: 1 layer, k = 256, batch 256)",
        "",
        f"Command: `{payload['command']}`  ",
        f"Machine: {payload['machine']}; torch {payload['torch']}; {payload['date']}",
        "",
        "| options | train epoch (s) | validation pass (s) | peak RSS (MB) | epochs timed |",
        "|---|---|---|---|---|",
        f"| authors' code (measured here, per the issue) | {AUTHORS['train_epoch_s']} | "
        f"{AUTHORS['eval_pass_s']} | {AUTHORS['peak_rss_mb']} | |",
    ]
    for name, r in rows.items():
        lines.append(
            f"| {name} | {r['train_epoch_s']:.2f} | {r['eval_pass_s']:.2f} | "
            f"{r['peak_rss_mb']:.0f} | {r['epochs']} |"
        )
    lines += [
        f"| bar | {BAR['train_epoch_s']} | {BAR['eval_pass_s']} | {BAR['peak_rss_mb']} | |",
        "",
        "Train epoch: median over the epochs after the first. `fast`: length-bucketed "
        "batches, masked-mean pooling, mean sequence-CL representation, alpha 0.1, "
        "3 encoder passes, minus-infinity masking. "
        "`paper`: every batch padded to 50, mean pooling over padding, 5 encoder passes, "
        "zero masking (the authors' code path).",
        "",
    ]
    write_results("speed_beauty", payload, "\n".join(lines))


if __name__ == "__main__":
    main()
