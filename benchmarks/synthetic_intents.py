"""Intent recovery on the built-in synthetic data (the `make run` job): test
HR/NDCG and the NMI between learned and planted intents, next to the NMI of a
uniform random assignment.

    python benchmarks/synthetic_intents.py --epochs 40 --patience 10

Writes benchmarks/results/synthetic_intents.{json,md}.  ``--plus [DATASET]``
takes ELCRec+'s options (the `plus` preset as tuned for DATASET, default
beauty) with the synthetic data's own k, and writes
synthetic_intents_plus.{json,md} (beauty) or synthetic_intents_plus_<dataset>.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, write_results  # noqa: E402

from elcrec import RunConfig, preset, train  # noqa: E402
from elcrec.config import BENCHMARKS, parse_overrides  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--epochs", type=int, default=40)
    ap.add_argument("--patience", type=int, default=10)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument(
        "--plus",
        nargs="?",
        const="beauty",
        choices=sorted(BENCHMARKS),
        help="ELCRec+ options (the plus preset) tuned for this dataset (default beauty)",
    )
    ap.add_argument("--set", nargs="*", default=[], metavar="SECTION.KEY=VALUE")
    ap.add_argument("--tag", help="output name suffix (required with --set)")
    args = ap.parse_args()
    if args.set and not args.tag:
        ap.error("--set needs --tag, so the committed results are not overwritten")
    cfg = RunConfig()
    if args.plus:
        # The tuned model and loss options; data, k and the budget stay the synthetic run's.
        tuned = preset("plus", args.plus)
        cfg.model = tuned.model
        cfg.model.n_clusters = RunConfig().model.n_clusters
        cfg.preset = f"plus, {args.plus}'s options (synthetic data)"
    cfg = cfg.replace(
        **parse_overrides(args.set),
        **{"train.epochs": args.epochs, "train.patience": args.patience, "train.seed": args.seed},
    )
    work = Path(tempfile.mkdtemp(prefix="elcrec-synthetic-"))
    try:
        result = train(cfg, work / "run", progress=False)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    intents = result["intents"]
    payload = {
        "nmi": intents["nmi"],
        "random_nmi": intents["random_nmi"],
        "used_intents": intents["used_intents"],
        "largest_share": intents["largest_share"],
        "effective_intents": intents["effective_intents"],
        "planted_intents": cfg.data.synthetic_intents,
        "n_clusters": cfg.model.n_clusters,
        "test": result["test"],
        "best_epoch": result["best_epoch"],
        "wall_s": result["wall_s"],
        "options": cfg.to_dict(),
        "command": command(),
        **environment(),
    }
    t = result["test"]
    md = "\n".join(
        [
            "# Synthetic data: intent recovery"
            + (f" (ELCRec+ options, tuned on {args.plus})" if args.plus else "")
            + (f", with {' '.join(args.set)}" if args.set else ""),
            "",
            f"Command: `{payload['command']}`  ",
            f"Machine: {payload['machine']}; torch {payload['torch']}; {payload['date']}",
            "",
            f"{cfg.data.synthetic_users} users, {cfg.data.synthetic_items} items, "
            f"{cfg.data.synthetic_intents} planted intents; "
            f"k = {cfg.model.n_clusters} learned intents.",
            "",
            "| NMI learned vs planted | NMI random vs planted | intents used | test HR@5 "
            "| test HR@20 | test NDCG@5 | test NDCG@20 | best epoch | wall (s) |",
            "|---|---|---|---|---|---|---|---|---|",
            f"| {intents['nmi']:.3f} | {intents['random_nmi']:.3f} | {intents['used_intents']} | "
            f"{t['HR@5']:.4f} | {t['HR@20']:.4f} | {t['NDCG@5']:.4f} | {t['NDCG@20']:.4f} | "
            f"{result['best_epoch']} | {result['wall_s']:.0f} |",
            "",
        ]
    )
    name = "synthetic_intents"
    if args.plus:
        name += "_plus" + ("" if args.plus == "beauty" else f"_{args.plus}")
    if args.tag:
        name += f"_{args.tag}"
    write_results(name, payload, md)
    print(md)


if __name__ == "__main__":
    main()
