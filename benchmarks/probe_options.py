"""Short probes of option sets on a benchmark: train a few epochs and record the
per-epoch losses and validation metrics, to see early which options train.

    python benchmarks/probe_options.py --tag bb_mean --epochs 5 \\
        --set model.variant=backbone model.seq_cl_repr=mean

Writes benchmarks/results/probes/<tag>.{json,md}.  Not a substitute for a full
run: it shows whether the next-item loss moves and where validation heads.
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, write_results  # noqa: E402

from elcrec import Run, preset  # noqa: E402
from elcrec.config import parse_overrides  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tag", required=True)
    ap.add_argument("--dataset", default="beauty")
    ap.add_argument("--preset", default="fast", choices=["fast", "paper"])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--data-dir", default=None)
    ap.add_argument("--set", nargs="*", default=[])
    args = ap.parse_args()
    overrides = parse_overrides(args.set)
    if args.data_dir:
        overrides["data.data_dir"] = args.data_dir
    cfg = preset(args.preset, args.dataset).replace(**overrides)
    work = Path(tempfile.mkdtemp(prefix="elcrec-probe-"))
    try:
        Run(cfg, work / "run").fit(progress=False, max_epochs=args.epochs)
        rows = [json.loads(x) for x in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    payload = {
        "tag": args.tag,
        "epochs": rows,
        "overrides": args.set,
        "preset": args.preset,
        "command": command(),
        **environment(),
    }
    lines = [
        f"# Probe `{args.tag}` ({args.preset} preset, {args.dataset})",
        "",
        f"Command: `{payload['command']}`",
        "",
        "| epoch | next-item loss | other losses | valid HR@5 | valid NDCG@20 | train s |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        other = ", ".join(
            f"{k[5:]} {v:.3f}"
            for k, v in r.items()
            if k.startswith("loss/") and k not in ("loss/next_item", "loss/total")
        )
        lines.append(
            f"| {r['epoch']} | {r['loss/next_item']:.3f} | {other} | "
            f"{r['valid/HR@5']:.4f} | {r['valid/NDCG@20']:.4f} | {r['train_s']:.1f} |"
        )
    (Path(__file__).resolve().parent / "results" / "probes").mkdir(parents=True, exist_ok=True)
    write_results(f"probes/{args.tag}", payload, "\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
