"""The paper's comparison under equal conditions: Table 1 and its ablation
with every model on the `fast` preset's options (the paper's BCE loss, the
same encoder, budget, split, evaluator and seeds), each ordered pair tested
user by user, and ICLRec's and ELCRec's efficiency from the same runs.

    elcrec benchmark --preset fast --models SASRec CL4SRec ICLRec ELCRec \\
        ELCRec-B+ICL ELCRec-B+ELCM --datasets beauty toys --seeds 1 2 3
    elcrec benchmark --preset fast --models SASRec CL4SRec ICLRec ELCRec \\
        --datasets sports yelp --seeds 1
    python benchmarks/table1_fast.py

Built from the grid cells under benchmarks/grid/ (nothing is trained here).
Writes to benchmarks/results/: table1_fast.{csv,json,md} (the four main
models, and the softmax half: SASRec-CE under `fast`, ELCRec+ under `plus`),
ablation.csv (B = CL4SRec, B+ICL, B+ELCM, ELCRec), paired_table1.{json,md}
(every adjacent pair the paper orders, paired bootstrap over test users) and
efficiency.{csv,json,md} (time per epoch and to the best epoch).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, environment, write_results  # noqa: E402
from paired_runs import compare, group_metrics  # noqa: E402

from elcrec.benchmark import ABLATION_ROWS, ablation, beyond, collect, table1, write_csv  # noqa: E402
from elcrec.config import BENCHMARKS  # noqa: E402
from elcrec.paper import METRICS, TABLE2, paper_metric  # noqa: E402

GRID = Path(__file__).resolve().parent / "grid"
PRESET = "fast"
MAIN = ("SASRec", "CL4SRec", "ICLRec", "ELCRec")  # the paper's order, weakest first
# Each pair the paper orders (first below second): Table 1's neighbours, then
# each step of the ablation (B = CL4SRec, ELCRec = B+ICL+ELCM).
PAIRS = (
    ("SASRec", "CL4SRec"),
    ("CL4SRec", "ICLRec"),
    ("ICLRec", "ELCRec"),
    (ABLATION_ROWS["B"], ABLATION_ROWS["B+ICL"]),
    (ABLATION_ROWS["B"], ABLATION_ROWS["B+ELCM"]),
    (ABLATION_ROWS["B+ICL"], ABLATION_ROWS["ELCRec"]),
    (ABLATION_ROWS["B+ELCM"], ABLATION_ROWS["ELCRec"]),
)
# Sports and Yelp have one seed: their intervals are over test users only.
PAIRED_DATASETS = ("beauty", "toys", "sports", "yelp")
EFFICIENCY_MODELS = ("ICLRec", "ELCRec")
T1_COLUMNS = ("model", "dataset", "metric", "mean", "std", "n_seeds", "paper")


def verdict(ci95: list[float]) -> str:
    """The second model against the first, as the 95 % interval says."""
    if ci95[0] > 0:
        return "ahead"
    if ci95[1] < 0:
        return "behind"
    return "level"


def paired_rows(grid: Path, n_boot: int) -> list[dict]:
    """One row per (dataset, ordered pair, metric) whose both cells exist."""
    rows = []
    for key in PAIRED_DATASETS:
        for first, second in PAIRS:
            folders = [grid / PRESET / key / m for m in (first, second)]
            if not all(any(f.glob("seed*/test_ranks.npz")) for f in folders):
                continue
            a, b = (group_metrics(m, f) for m, f in zip((first, second), folders))
            for metric, r in compare(a, b, n_boot, 0).items():
                pa = paper_metric(first, BENCHMARKS[key], metric)
                pb = paper_metric(second, BENCHMARKS[key], metric)
                rows.append(
                    {
                        "dataset": BENCHMARKS[key],
                        "first": first,
                        "second": second,
                        "metric": metric,
                        "n_seeds": [len(a["runs"]), len(b["runs"])],
                        "first_mean": round(r["first"], 5),
                        "second_mean": round(r["second"], 5),
                        "difference": round(r["difference"], 5),
                        "relative": None if r["relative"] is None else round(r["relative"], 4),
                        "ci95": [round(x, 5) for x in r["ci95"]],
                        "verdict": verdict(r["ci95"]),
                        "paper_relative": None if not (pa and pb) else round(pb / pa - 1, 4),
                    }
                )
    return rows


def efficiency(rows: list[dict]) -> list[dict]:
    """Per dataset and model: seconds per epoch (training and its validation,
    the run's wall time over its epochs) and to the best epoch, mean over seeds."""
    out = []
    for dataset in sorted({r["dataset"] for r in rows}):
        for model in EFFICIENCY_MODELS:
            runs = [r for r in rows if r["dataset"] == dataset and r["model"] == model]
            if not runs:
                continue
            paper_s, paper_mb = TABLE2[dataset][model]
            out.append(
                {
                    "dataset": dataset,
                    "model": model,
                    "n_seeds": len(runs),
                    "epoch_s": round(
                        statistics.mean(r["wall_s"] / r["epochs_run"] for r in runs), 2
                    ),
                    "best_epoch": round(statistics.mean(r["best_epoch"] for r in runs), 1),
                    "time_to_best_s": round(statistics.mean(r["time_to_best_s"] for r in runs), 1),
                    "wall_s": round(statistics.mean(r["wall_s"] for r in runs), 1),
                    "device": "; ".join(sorted({r["device"] for r in runs})),
                    "paper_time_s": paper_s,
                    "paper_gpu_mb": paper_mb,
                }
            )
    return out


def _ratio(rows: list[dict], dataset: str, key: str) -> float | None:
    pair = {r["model"]: r[key] for r in rows if r["dataset"] == dataset}
    if len(pair) < 2 or not pair["ICLRec"]:
        return None
    return pair["ELCRec"] / pair["ICLRec"] - 1


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:+.1f} %"


def efficiency_lines(eff: list[dict]) -> list[str]:
    lines = [
        "",
        "## Efficiency: ICLRec and ELCRec in these runs (efficiency.csv)",
        "",
        "Seconds per epoch: a run's wall time (training and validation) over its epochs.  "
        "On the 2-core CPU the grid's cells run two at a time, one thread each (the layout "
        "benchmarks/grid_throughput.py measured as the most epochs per minute), so a cell's "
        "time is that of one core beside another busy one; the device column gives each "
        "model's cells' threads (and the GPU, for cells run on one).",
        "",
        "| dataset | model | seeds | s per epoch | best epoch | s to best | device "
        "| paper: whole run (s) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in eff:
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['n_seeds']} | {r['epoch_s']} | "
            f"{r['best_epoch']} | {r['time_to_best_s']} | {r['device']} | {r['paper_time_s']} |"
        )
    lines += ["", "ELCRec against ICLRec (the paper's Table 2: whole runs on a GPU):", ""]
    for dataset in sorted({r["dataset"] for r in eff}):
        paper = TABLE2[dataset]
        lines.append(
            f"- {dataset}: per epoch {_pct(_ratio(eff, dataset, 'epoch_s'))}, to the best epoch "
            f"{_pct(_ratio(eff, dataset, 'time_to_best_s'))}; paper "
            f"{_pct(paper['ELCRec'][0] / paper['ICLRec'][0] - 1)}"
        )
    return lines


def markdown(t1, softmax, ab, pairs, eff, cmd: str) -> str:
    by = {(r["dataset"], r["model"], r["metric"]): r for r in t1}
    # keyed by both models: ELCRec is the second of three pairs (after ICLRec,
    # B+ICL and B+ELCM), and each row is read against its own predecessor
    step = {(p["dataset"], p["first"], p["second"], p["metric"]): p for p in pairs}
    lines = [
        "# Table 1 under equal conditions (`--preset fast`, the paper's BCE loss)",
        "",
        f"`{cmd}`",
        "",
        "Test, mean over seeds (std in table1_fast.csv); in brackets the paper's number.  "
        "Verdict: this model against the row above it, user-paired 95 % bootstrap interval "
        "(paired_table1.md), per metric: + ahead, − behind, = level (the interval holds 0).",
        "",
        "| dataset | model | seeds | " + " | ".join(METRICS) + " | vs the row above |",
        "|---|---|---|" + "---|" * len(METRICS) + "---|",
    ]
    for dataset in sorted({r["dataset"] for r in t1}):
        above = None
        for model in MAIN:
            if (dataset, model, METRICS[0]) not in by:
                continue
            cells = []
            for m in METRICS:
                r = by[(dataset, model, m)]
                paper = "" if r["paper"] in ("", None) else f" ({r['paper']:.4f})"
                cells.append(f"{r['mean']:.4f}{paper}")
            verdicts = _marks(step, dataset, above, model)
            above = model
            n = by[(dataset, model, METRICS[0])]["n_seeds"]
            lines.append(f"| {dataset} | {model} | {n} | " + " | ".join(cells) + f" | {verdicts} |")
    lines += [
        "",
        "## The softmax half (beyond.md's cells: SASRec-CE `--preset fast`, ELCRec+ "
        "`--preset plus`; † the presets' earlier version)",
        "",
        "| dataset | model | seeds | " + " | ".join(METRICS) + " |",
        "|---|---|---|" + "---|" * len(METRICS),
    ]
    soft = {(r["dataset"], r["model"], r["metric"]): r for r in softmax}
    for dataset, model in sorted({(r["dataset"], r["model"]) for r in softmax}):
        rs = [soft[(dataset, model, m)] for m in METRICS]
        mark = " †" if rs[0]["preset"].endswith("-v1") else ""
        lines.append(
            f"| {dataset} | {model}{mark} | {rs[0]['n_seeds']} | "
            + " | ".join(f"{r['mean']:.4f}" for r in rs)
            + " |"
        )
    lines += [
        "",
        "## Ablation: HR@5 + HR@20 + NDCG@5 + NDCG@20 (B = CL4SRec)",
        "",
        "Paired: the variant against the one it extends, per metric as above "
        "(B+ICL and B+ELCM against B; ELCRec against each).",
        "",
        "| dataset | variant | seeds | ours | paper | paired |",
        "|---|---|---|---|---|---|",
    ]
    for r in ab:
        second = ABLATION_ROWS[r["variant"]]
        marks = {
            _variant(a): _marks(step, r["dataset"], a, second)
            for a, b in PAIRS
            if b == second and a in ABLATION_ROWS.values()
        }
        paired = "; ".join(f"vs {v}: {m}" for v, m in marks.items() if m)
        lines.append(
            f"| {r['dataset']} | {r['variant']} | {r['n_seeds']} | "
            f"{r['sum_mean']:.4f} ± {r['sum_std']:.4f} | {r['paper']} | {paired} |"
        )
    lines += efficiency_lines(eff)
    return "\n".join(lines) + "\n"


def _marks(step: dict, dataset: str, first: str | None, second: str) -> str:
    """'+ − = =': ``second`` against ``first`` per metric ('' if not paired)."""
    marks = [step.get((dataset, first, second, m)) for m in METRICS]
    if None in marks:
        return ""
    sign = {"ahead": "+", "behind": "−", "level": "="}
    return " ".join(sign[p["verdict"]] for p in marks)


def _variant(model: str) -> str:
    return next(v for v, m in ABLATION_ROWS.items() if m == model)


def paired_markdown(pairs: list[dict], cmd: str) -> str:
    lines = [
        "# The paper's orderings, tested user by user (`--preset fast`)",
        "",
        f"`{cmd}`",
        "",
        "Second model minus first, test, each user's metric averaged over the seeds; 95 % "
        "paired bootstrap interval over test users (1000 resamples).  ahead / behind: the "
        "interval excludes 0; level: it holds 0.  Paper: the same gap in the paper's Table 1 "
        "(— where the paper has no number, as for the ablation rows).",
        "",
        "| dataset | first → second | metric | first | second | difference | relative "
        "| 95 % interval | verdict | paper |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in pairs:
        rel = _pct(p["relative"])
        lines.append(
            f"| {p['dataset']} | {p['first']} → {p['second']} | {p['metric']} | "
            f"{p['first_mean']:.4f} | {p['second_mean']:.4f} | {p['difference']:+.4f} | {rel} | "
            f"[{p['ci95'][0]:+.4f}, {p['ci95'][1]:+.4f}] | {p['verdict']} | "
            f"{_pct(p['paper_relative'])} |"
        )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--grid", type=Path, default=GRID, help="the grid cells' summaries")
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--boot", type=int, default=1000)
    args = ap.parse_args()
    rows = collect(args.grid, PRESET)
    if not rows:
        raise SystemExit(f"{args.grid / PRESET}: no finished grid cells")
    t1 = [{k: r[k] for k in T1_COLUMNS} for r in table1(rows) if r["model"] in MAIN]
    softmax = [r for r in beyond(args.grid) if r["model"] in ("SASRec-CE", "ELCRec+")]
    ab = ablation(rows)
    pairs = paired_rows(args.grid, args.boot)
    eff = efficiency(rows)
    cmd = command()
    env = environment()
    args.out.mkdir(parents=True, exist_ok=True)
    write_csv(args.out / "table1_fast.csv", t1)
    write_csv(args.out / "ablation.csv", ab)
    write_csv(args.out / "efficiency.csv", eff)
    payload = {"command": cmd, "environment": env, "preset": PRESET}
    md = markdown(t1, softmax, ab, pairs, eff, cmd)
    runs = [r for r in rows if r["model"] in (*MAIN, *ABLATION_ROWS.values())]
    write_results(
        "table1_fast",
        {**payload, "table1": t1, "softmax": softmax, "ablation": ab, "runs": runs},
        md,
        args.out,
    )
    write_results(
        "paired_table1", {**payload, "pairs": pairs}, paired_markdown(pairs, cmd), args.out
    )
    eff_md = [f"# Efficiency: ICLRec and ELCRec (`--preset {PRESET}` grid)", "", f"`{cmd}`"]
    write_results(
        "efficiency",
        {**payload, "rows": eff},
        "\n".join(eff_md + efficiency_lines(eff)) + "\n",
        args.out,
    )
    print(md)


if __name__ == "__main__":
    main()
