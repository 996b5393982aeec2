"""Scale: a synthetic log of a million users, ingested into the compact store,
and one training epoch of ELCRec and ICLRec at 100k, 300k and 1M users.

    python benchmarks/scale_1m.py [--sizes 100000 300000 1000000] [--threads 1]

1. A Parquet log with planted intents (``data.write_synthetic_log``: 1M users,
   100k items of power-law popularity, about 20M interactions) in
   ``$ELCREC_WORK/scale/`` (kept: it is made once).
2. Ingest, in a process of its own (its peak memory is its own): the chunked
   PyArrow reader (``data.read_log``) and the store it writes
   (``Interactions.save``): ``ingest_s``, ``ingest_peak_rss_mb``.
3. Per size, the first N users of that store; per model, in a fresh process:
   a run folder holding the store (hard links), ``Run.setup`` and
   ``Run.restore`` (ELCRec's k-means initialisation: ``setup_s``), then one
   epoch as ``Run.fit`` runs it (the model's epoch hook, which for ICLRec is
   its k-means refit, and ``train_epoch``): ``epoch_s``; ``peak_rss_mb`` of
   that process.  Validation is not part of the epoch measured (ranking 1M
   users over 100k items is its own cost, linear in the users).

Memory: ``rss_net_mb`` = peak RSS minus the size of the store files the run
maps (what the kernel may keep resident from them); ``rss_ratio_1m_vs_100k``
= that at 1M users over that at 100k (the bar: at most 1.5).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import command, environment, write_results  # noqa: E402

MODELS = ("ELCRec", "ICLRec")


def child(argv: list[str]) -> dict:
    """Run this script's --child step in a fresh process; its JSON answer."""
    out = subprocess.run(
        [sys.executable, __file__, "--child", *argv], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise SystemExit(f"child {argv} failed:\n{out.stderr[-4000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def store_mb(folder: Path) -> float:
    return sum(p.stat().st_size for p in folder.glob("*.npy")) / 2**20


def step_ingest(log: str, store: str) -> dict:
    from elcrec.data import read_log

    t0 = time.perf_counter()
    data = read_log(log)
    data.save(store)
    return {
        "ingest_s": time.perf_counter() - t0,
        "ingest_peak_rss_mb": peak_rss_mb(),
        **data.stats(),
        "store_mb": store_mb(Path(store)),
    }


def step_subset(store: str, users: int, out: str) -> dict:
    from elcrec.data import Interactions

    full = Interactions.open(store)
    end = int(full.offsets[users])
    part = Interactions(
        full.user_ids[:users], full.item_ids, full.flat[:end], full.offsets[: users + 1], "scale"
    )
    part.save(out)
    return part.stats()


def step_epoch(store: str, model: str, threads: int, run_dir: str) -> dict:
    import torch

    from elcrec import Run
    from elcrec.config import preset

    cfg = preset("fast", "synthetic").replace(
        **{"model.name": model, "train.threads": threads, "data.source": "scale"}
    )
    run = Path(run_dir)
    (run / "store").mkdir(parents=True)
    for f in Path(store).iterdir():
        os.link(f, run / "store" / f.name)
    cfg.save(run / "config.json")
    base = peak_rss_mb()
    r = Run(cfg, run)
    t0 = time.perf_counter()
    r.setup()
    r.restore()
    setup_s = time.perf_counter() - t0
    t1 = time.perf_counter()
    r.model.on_epoch_start(r.encode_users, cfg.train.seed, 0)
    losses = r.train_epoch(0, progress=False)
    epoch_s = time.perf_counter() - t1
    peak = peak_rss_mb()
    mapped = store_mb(run / "store")
    return {
        "setup_s": setup_s,
        "epoch_s": epoch_s,
        "samples": int(len(r.split.train_users)),
        "peak_rss_mb": peak,
        "rss_before_run_mb": base,
        "store_mb": mapped,
        "rss_net_mb": peak - mapped,
        "loss": losses.get("total"),
        "threads": torch.get_num_threads(),
        "options": {k: v for k, v in cfg.to_dict()["model"].items()},
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--users", type=int, default=1_000_000)
    ap.add_argument("--items", type=int, default=100_000)
    ap.add_argument("--sizes", type=int, nargs="+", default=[100_000, 300_000, 1_000_000])
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--work", default=None, help="default: $ELCREC_WORK/scale")
    ap.add_argument("--name", default="scale_1m")
    ap.add_argument("--child", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        step, *rest = args.child
        fn = {"ingest": step_ingest, "subset": step_subset, "epoch": step_epoch}[step]
        rest = [int(x) if x.isdigit() else x for x in rest]
        print(json.dumps(fn(*rest)))
        return

    from elcrec.data import write_synthetic_log
    from elcrec.runs import default_work

    work = Path(args.work) if args.work else default_work() / "scale"
    tag = f"u{args.users}_i{args.items}_s{args.seed}"
    log = work / f"log_{tag}.parquet"
    result: dict = {"command": command(), "seed": args.seed, "threads": args.threads}
    if not log.exists():
        t0 = time.perf_counter()
        counts = write_synthetic_log(log, args.users, args.items, seed=args.seed)
        result["generate_s"] = time.perf_counter() - t0
        print(f"generated {counts} in {result['generate_s']:.0f}s", flush=True)
    result["log_mb"] = log.stat().st_size / 2**20
    store = work / f"store_{tag}"
    ingest = child(["ingest", str(log), str(store)])
    print(f"ingest: {ingest}", flush=True)
    result.update(
        users=ingest["users"],
        items=ingest["items"],
        interactions=ingest["interactions"],
        ingest_s=ingest["ingest_s"],
        ingest_peak_rss_mb=ingest["ingest_peak_rss_mb"],
        store_mb=ingest["store_mb"],
    )
    result["sizes"] = {}
    for n in args.sizes:
        part = work / f"store_{tag}_first{n}"
        if not (part / "store.json").exists():
            child(["subset", str(store), str(n), str(part)])
        row: dict = {}
        for model in args.models:
            run_dir = work / "runs" / f"{model}_{n}"
            if run_dir.exists():
                import shutil

                shutil.rmtree(run_dir)
            row[model] = child(["epoch", str(part), model, str(args.threads), str(run_dir)])
            print(f"{n} users {model}: {json.dumps(row[model])[:300]}", flush=True)
        result["sizes"][str(n)] = row
    sizes = result["sizes"]
    small, large = str(min(args.sizes)), str(max(args.sizes))
    ratios = {m: sizes[large][m]["rss_net_mb"] / sizes[small][m]["rss_net_mb"] for m in args.models}
    result["rss_ratio_by_model"] = ratios
    result[f"rss_ratio_{_short(int(large))}_vs_{_short(int(small))}"] = max(ratios.values())
    result["environment"] = environment()
    lines = [
        f"# Scale: {result['users']:,} users, {result['items']:,} items, "
        f"{result['interactions']:,} interactions",
        "",
        f"Command: `{result['command']}`",
        "",
        f"Ingest (chunked PyArrow reader + store): {result['ingest_s']:.0f} s, peak "
        f"{result['ingest_peak_rss_mb']:.0f} MB; store {result['store_mb']:.0f} MB on disk.",
        "",
        "| users | model | setup s | epoch s | peak RSS MB | store MB | RSS minus store MB |",
        "|---|---|---|---|---|---|---|",
    ]
    for n, row in sizes.items():
        for m, r in row.items():
            lines.append(
                f"| {int(n):,} | {m} | {r['setup_s']:.0f} | {r['epoch_s']:.0f} | "
                f"{r['peak_rss_mb']:.0f} | {r['store_mb']:.0f} | {r['rss_net_mb']:.0f} |"
            )
    lines += [
        "",
        "RSS minus store, largest over smallest size: "
        + ", ".join(f"{m} {v:.2f}" for m, v in ratios.items()),
        "",
        f"Machine: {result['environment']}",
        "",
    ]
    write_results(args.name, result, "\n".join(lines))


def _short(n: int) -> str:
    return f"{n // 1_000_000}m" if n % 1_000_000 == 0 else f"{n // 1000}k"


if __name__ == "__main__":
    main()
