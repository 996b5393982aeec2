"""How to fill this machine's cores with grid cells: one cell with every
thread, or one cell per core (``elcrec benchmark --jobs N --threads 1``)?

    python benchmarks/grid_throughput.py --model ELCRec --preset fast --epochs 6

Times ``--epochs`` training epochs (from scratch, Beauty or ``--data``, the
median after the first) of one model in three layouts, each in its own processes: one process
with all threads, one process with one thread, and as many one-thread
processes at once as the machine has cores.  Throughput is epochs per minute
summed over the processes running together.  Writes
benchmarks/results/grid_throughput_<model>_<preset>.{json,md}.  Run it on an
otherwise idle machine: it is the machine it measures.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, environment, time_epochs, write_results  # noqa: E402


def one(args, threads: int) -> dict:
    """Time the epochs in this process, with ``threads`` torch threads."""
    from elcrec.benchmark import Cell

    cfg = Cell(args.model, args.data, 1).config(args.preset, {})
    cfg = cfg.replace(**{"train.threads": threads, "train.device": "cpu"})
    if args.data_dir:
        cfg = cfg.replace(**{"data.data_dir": args.data_dir})
    out = time_epochs(cfg, args.epochs)
    out.pop("options")
    return out


def launch(args, threads: int) -> subprocess.Popen:
    cmd = [sys.executable, __file__, "--one", str(threads), "--model", args.model]
    cmd += ["--preset", args.preset, "--epochs", str(args.epochs), "--data", args.data]
    if args.data_dir:
        cmd += ["--data-dir", args.data_dir]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads)}
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True, env=env)


def together(args, processes: int, threads: int) -> dict:
    """``processes`` processes of ``threads`` threads each, started at once."""
    running = [launch(args, threads) for _ in range(processes)]
    results = []
    for p in running:
        stdout, _ = p.communicate()
        if p.returncode:
            raise SystemExit(f"a timing process failed (exit {p.returncode})")
        results.append(json.loads(stdout.strip().splitlines()[-1]))
    epoch_s = [r["train_epoch_s"] for r in results]
    return {
        "layout": f"{processes} process{'es' if processes > 1 else ''} x {threads} thread"
        + ("s" if threads > 1 else ""),
        "processes": processes,
        "threads": threads,
        "train_epoch_s": epoch_s,
        "epochs_per_min": round(sum(60.0 / s for s in epoch_s), 2),
        "peak_rss_mb": [r["peak_rss_mb"] for r in results],
    }


def markdown(rows: list[dict], cmd: str, env: dict) -> str:
    base = rows[0]["epochs_per_min"]
    lines = [
        f"# Grid throughput on this machine ({env['machine']})",
        "",
        f"`{cmd}`",
        "",
        "| layout | train epoch (s), each process | epochs per minute, together | vs the first |",
        "|---|---|---|---|",
    ]
    for r in rows:
        each = ", ".join(f"{s:.1f}" for s in r["train_epoch_s"])
        lines.append(
            f"| {r['layout']} | {each} | {r['epochs_per_min']:.2f} | "
            f"{r['epochs_per_min'] / base:.2f} x |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="ELCRec")
    ap.add_argument("--preset", default="fast")
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--data", default="beauty", help="a benchmark name or synthetic")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--data-dir", default=os.environ.get("ELCREC_DATA_DIR"))
    ap.add_argument("--one", type=int, metavar="THREADS", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.one:
        print(json.dumps(one(args, args.one)))
        return
    cores = os.cpu_count() or 1
    rows = [together(args, 1, cores), together(args, 1, 1), together(args, cores, 1)]
    cmd, env = command(), environment()
    payload = {"command": cmd, "environment": env, "model": args.model, "rows": rows}
    name = f"grid_throughput_{args.model}_{args.preset}".replace("+", "plus")
    write_results(name, payload, markdown(rows, cmd, env), args.out)
    print(markdown(rows, cmd, env))


if __name__ == "__main__":
    main()
