"""Sampled softmax with log-Q correction against the full softmax, on a
synthetic catalogue of 100k items: validation NDCG@20 and time per epoch.

    python benchmarks/sampled_softmax.py [--users 20000] [--epochs 8] [--threads 1]

The log comes from ``data.write_synthetic_log`` (power-law popularity,
planted intents), kept in ``$ELCREC_WORK/sampled_softmax/``.  Every variant
is the `fast` preset's SASRec (``model.variant = sasrec``: the next-item
loss alone, so the loss is all that differs), trained ``--epochs`` epochs
in a process of its own; run folders are kept, so an interrupted benchmark
resumes where it stopped.  Variants:

* ``full``: ``model.loss = ce`` (softmax over all 100k items);
* ``uniform``: ``sampled_softmax``, uniform negatives (no correction needed);
* ``popularity+logq``: negatives drawn by training popularity, log-Q corrected;
* ``popularity+in_batch+logq``: those plus the batch's other targets.

``ndcg_ratio`` = best validation NDCG@20 of the sampled variant over the
full softmax's; ``time_ratio`` = its median epoch time over the full
softmax's.  The headline variant is ``--headline`` (default
popularity+in_batch+logq, the Transformers4Rec / TFRS recipe), chosen before
the run; every variant is reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, write_results  # noqa: E402

VARIANTS = {
    "full": {"model.loss": "ce"},
    "uniform": {"model.loss": "sampled_softmax"},
    "popularity+logq": {"model.loss": "sampled_softmax", "model.negative_sampler": "popularity"},
    "popularity+in_batch+logq": {
        "model.loss": "sampled_softmax",
        "model.negative_sampler": "popularity",
        "model.in_batch_negatives": True,
    },
}


def config(args, variant: str):
    from elcrec.config import preset

    return preset("fast", "synthetic").replace(
        **{
            "data.source": f"synthetic_log_{args.users}u_{args.items}i",
            "model.variant": "sasrec",
            "model.n_negatives": args.negatives,
            "train.epochs": args.epochs,
            "train.patience": args.epochs,
            "train.threads": args.threads,
            "train.evaluate_test": False,
            **VARIANTS[variant],
        }
    )


def train_variant(args, work: Path, variant: str) -> dict:
    from elcrec import Run
    from elcrec.data import Interactions

    run = work / "runs" / variant
    Run(config(args, variant), run, Interactions.open(work / "store")).fit(progress=True)
    curve = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    return {
        "epochs": len(curve),
        "train_s": [c["train_s"] for c in curve],
        "median_epoch_s": statistics.median(c["train_s"] for c in curve),
        "valid_ndcg20": [c["valid/NDCG@20"] for c in curve],
        "best_valid_ndcg20": max(c["valid/NDCG@20"] for c in curve),
        "best_valid": max(
            ({k[6:]: v for k, v in c.items() if k.startswith("valid/")} for c in curve),
            key=lambda m: m["NDCG@20"],
        ),
        "peak_rss_mb": max(c["peak_rss_mb"] for c in curve),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=20_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--negatives", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--variants", nargs="+", default=list(VARIANTS))
    ap.add_argument("--headline", default="popularity+in_batch+logq")
    ap.add_argument("--work", default=None, help="default: $ELCREC_WORK/sampled_softmax")
    ap.add_argument("--only", help=argparse.SUPPRESS)
    args = ap.parse_args()
    from elcrec.runs import default_work

    work = Path(args.work) if args.work else default_work() / "sampled_softmax"
    if args.only:
        print(json.dumps(train_variant(args, work, args.only)))
        return
    from elcrec.data import Interactions, read_log, write_synthetic_log

    if not (work / "store" / "store.json").exists():
        log = work / "log.parquet"
        write_synthetic_log(log, args.users, args.items, seed=0)
        data = read_log(log)
        # The whole catalogue, the items no user touched included (a log
        # knows only the items it holds): the log's item ids are 1..items,
        # so internal ids are the log's own.
        flat = np.asarray(data.item_ids)[data.flat - 1]
        catalogue = np.arange(1, args.items + 1)
        Interactions(data.user_ids, catalogue, flat, data.offsets, "synthetic_log").save(
            work / "store"
        )
    results = {}
    for variant in args.variants:
        cmd = [sys.executable, __file__, "--only", variant] + [
            a for a in sys.argv[1:] if a != "--only"
        ]
        print(f"== {variant}", flush=True)
        out = subprocess.run(cmd, check=True, stdout=subprocess.PIPE, text=True).stdout
        results[variant] = json.loads(out.strip().splitlines()[-1])
    full = results["full"]
    for r in results.values():
        r["ndcg_ratio"] = r["best_valid_ndcg20"] / full["best_valid_ndcg20"]
        r["time_ratio"] = r["median_epoch_s"] / full["median_epoch_s"]
    head = results[args.headline]
    payload = {
        "command": command(),
        "data": Interactions.open(work / "store").stats(),
        "epochs": args.epochs,
        "catalogue_items": args.items,
        "negatives": args.negatives,
        "seed": 1,
        "headline": args.headline,
        "ndcg_ratio": head["ndcg_ratio"],
        "time_ratio": head["time_ratio"],
        "variants": results,
        "options": config(args, args.headline).to_dict(),
        "environment": environment(),
    }
    lines = [
        "# Sampled softmax with log-Q correction against the full softmax",
        "",
        f"Command: `{payload['command']}`",
        "",
        f"Data: synthetic log, {payload['data']['users']:,} users, a catalogue of "
        f"{payload['data']['items']:,} items (the softmax's width; those no user touched "
        f"included), {payload['data']['interactions']:,} interactions; SASRec (`fast` "
        f"preset, next-item loss only), {args.epochs} epochs, "
        f"{args.negatives} sampled negatives, seed 1.",
        "",
        "| variant | best valid NDCG@20 | ratio to full | s per epoch | time ratio |",
        "|---|---|---|---|---|",
    ]
    for name, r in results.items():
        lines.append(
            f"| {name} | {r['best_valid_ndcg20']:.4f} | {r['ndcg_ratio']:.3f} | "
            f"{r['median_epoch_s']:.1f} | {r['time_ratio']:.3f} |"
        )
    lines += [
        "",
        f"Headline ({args.headline}, chosen before the run): ndcg_ratio "
        f"{head['ndcg_ratio']:.3f} (bar: at least 0.95), time_ratio {head['time_ratio']:.3f} "
        "(bar: at most 0.33).",
        "",
        f"Machine: {payload['environment']}",
        "",
    ]
    write_results("sampled_softmax", payload, "\n".join(lines))


if __name__ == "__main__":
    main()
