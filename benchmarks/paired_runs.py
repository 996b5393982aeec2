"""Is one model's lead over another more than chance?  Two groups of finished
run folders (seeds) on the same data, compared user by user on the test split.

    python benchmarks/paired_runs.py --tag beauty \\
        "SASRec-CE=benchmarks/grid/fast/beauty/SASRec-CE" \\
        "ELCRec+=benchmarks/grid/plus/beauty/ELCRec+"

A group is a folder of seed<N> runs (or one run folder).  Runs keep their
per-user test ranks in test_ranks.npz, committed with the grid cells; runs
from before that file existed need their local weights (best.pt, data.json).
Each user's HR@k and NDCG@k are averaged over the group's seeds; the
difference of the means (second group minus first) is then bootstrapped over
users, paired (the same users are drawn for both), which says how far the
choice of test users alone moves it.  The seed-to-seed spread, the other
source of noise, is given beside it (the std of the per-seed means), and the
difference is broken down by history length (the number of items before the
test item, cut at its quartiles; tied quartiles merge groups).
Writes benchmarks/results/paired_<tag>.{json,md}.

``--split valid`` compares on the validation split instead, from each run's
best weights: the way to ask whether one search trial beats another beyond
the choice of users without looking at the test set (a trial never tests).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, environment, write_results  # noqa: E402

METRICS = ("HR@5", "HR@20", "NDCG@5", "NDCG@20")


def per_user_metrics(ranks: np.ndarray) -> dict[str, np.ndarray]:
    """Each user's HR@k and NDCG@k for the compared metrics (the evaluator's)."""
    from elcrec.evaluate import per_user_metrics as evaluator

    out = evaluator(ranks)
    return {m: out[m] for m in METRICS}


def paired_bootstrap(a: np.ndarray, b: np.ndarray, n_boot: int = 1000, seed: int = 0):
    """Mean of b - a and its 95 % percentile interval over ``n_boot`` resamples
    of the users (drawn with replacement, the same draw for a and b)."""
    diff = np.asarray(b, dtype=np.float64) - np.asarray(a, dtype=np.float64)
    rng = np.random.default_rng(seed)
    means = np.empty(n_boot)
    chunk = max(1, 2_000_000 // max(len(diff), 1))  # bound the index matrix's memory
    for lo in range(0, n_boot, chunk):
        hi = min(lo + chunk, n_boot)
        means[lo:hi] = diff[rng.integers(0, len(diff), size=(hi - lo, len(diff)))].mean(axis=1)
    low, high = np.percentile(means, [2.5, 97.5])
    return float(diff.mean()), float(low), float(high)


def run_folders(path: Path) -> list[Path]:
    if (path / "test_metrics.json").exists():
        return [path]
    runs = sorted(p.parent for p in path.glob("seed*/test_metrics.json"))
    if not runs:
        raise SystemExit(f"{path}: no finished run (test_metrics.json) in it or its seed*/ folders")
    return runs


def user_ranks(run_dir: Path, stage: str = "test"):
    """Target rank of every user on the test split (best checkpoint), the
    test items and each user's history length: as the run saved them
    (test_ranks.npz), or recomputed from its weights for older runs.  With
    ``stage = "valid"`` the same on the validation split, always from the
    weights (a run saves its test ranks only)."""
    saved = run_dir / "test_ranks.npz"
    if stage == "test" and saved.exists():
        with np.load(saved, allow_pickle=False) as arrays:
            found = {name: arrays[name] for name in arrays.files}
    else:
        from elcrec import Recommender
        from elcrec.data import Split
        from elcrec.evaluate import per_user_test, rank_all

        rec = Recommender.load(run_dir)
        split = Split(rec.data, rec.cfg.data.max_len)
        mask = rec.cfg.train.history_mask  # the one test_metrics.json's "test" used
        ranks = rank_all(rec.model, split, stage, history_mask=mask)
        found = per_user_test(ranks, split, stage)
    return found["ranks"], found["targets"], found["history"]


def group_metrics(label: str, path: Path | list[Path], stage: str = "test") -> dict:
    """A group's per-user metrics on ``stage``, averaged over its runs: a
    folder's seed<N> runs, or the given list of run folders."""
    runs = list(path) if isinstance(path, list) else run_folders(path)
    per_seed, targets, history = [], None, None
    for run in runs:
        ranks, run_targets, run_history = user_ranks(run, stage)
        if targets is None:
            targets, history = run_targets, run_history
        elif not np.array_equal(targets, run_targets):
            raise SystemExit(f"{run}: its test items differ from {runs[0]}'s; not the same data")
        per_seed.append(per_user_metrics(ranks))
    mean = {m: np.mean([s[m] for s in per_seed], axis=0) for m in METRICS}
    seed_means = {m: [float(s[m].mean()) for s in per_seed] for m in METRICS}
    return {
        "label": label,
        "runs": [str(r) for r in runs],
        "per_user": mean,
        "seed_means": seed_means,
        "targets": targets,
        "history": history,
    }


def compare(first: dict, second: dict, n_boot: int, seed: int) -> dict:
    if not np.array_equal(first["targets"], second["targets"]):
        raise SystemExit(f"{first['label']} and {second['label']} were tested on different data")
    history = first["history"]
    edges = np.quantile(history, [0.25, 0.5, 0.75])
    bucket = np.searchsorted(edges, history, side="right")
    out = {}
    for m in METRICS:
        a, b = first["per_user"][m], second["per_user"][m]
        diff, low, high = paired_bootstrap(a, b, n_boot, seed)
        by_length = []
        for q in range(4):
            sel = bucket == q
            if not sel.any():
                continue
            by_length.append(
                {
                    "history": f"{int(history[sel].min())}-{int(history[sel].max())}",
                    "users": int(sel.sum()),
                    "first": float(a[sel].mean()),
                    "second": float(b[sel].mean()),
                }
            )
        out[m] = {
            "first": float(a.mean()),
            "second": float(b.mean()),
            "difference": diff,
            "relative": diff / float(a.mean()) if a.mean() else None,
            "ci95": [low, high],
            "seed_std_first": _std(first["seed_means"][m]),
            "seed_std_second": _std(second["seed_means"][m]),
            "by_history_length": by_length,
        }
    return out


def _std(values: list[float]) -> float | None:
    return statistics.stdev(values) if len(values) > 1 else None


def markdown(
    first: dict, second: dict, result: dict, n_boot: int, cmd: str, stage: str = "test"
) -> str:
    a, b = first["label"], second["label"]
    lines = [
        f"# Paired comparison: {b} against {a} ({stage}, user by user)",
        "",
        f"`{cmd}`",
        "",
        f"{a}: {len(first['runs'])} run(s); {b}: {len(second['runs'])} run(s); each user's "
        f"metric averaged over a group's runs.  Interval: 95 % paired bootstrap over users "
        f"({n_boot} resamples).  Seed std: std of the per-run means.",
        "",
        f"| metric | {a} | {b} | difference | relative | 95 % interval (users) "
        f"| seed std {a} / {b} |",
        "|---|---|---|---|---|---|---|",
    ]
    for m, r in result.items():
        std = " / ".join(
            "—" if s is None else f"{s:.4f}" for s in (r["seed_std_first"], r["seed_std_second"])
        )
        rel = "—" if r["relative"] is None else f"{100 * r['relative']:+.1f} %"
        lines.append(
            f"| {m} | {r['first']:.4f} | {r['second']:.4f} | {r['difference']:+.4f} | {rel} | "
            f"[{r['ci95'][0]:+.4f}, {r['ci95'][1]:+.4f}] | {std} |"
        )
    lines += ["", f"By history length (items before the {stage} item, cut at its quartiles):", ""]
    lines += [f"| metric | history | users | {a} | {b} | difference |", "|---|---|---|---|---|---|"]
    for m, r in result.items():
        for row in r["by_history_length"]:
            lines.append(
                f"| {m} | {row['history']} | {row['users']} | {row['first']:.4f} | "
                f"{row['second']:.4f} | {row['second'] - row['first']:+.4f} |"
            )
    return "\n".join(lines) + "\n"


def parse_group(text: str) -> tuple[str, Path]:
    if "=" not in text:
        raise argparse.ArgumentTypeError(f"{text!r}: expected LABEL=FOLDER")
    label, folder = text.split("=", 1)
    return label, Path(folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--tag", required=True)
    ap.add_argument("first", type=parse_group, help="LABEL=FOLDER (the reference)")
    ap.add_argument("second", type=parse_group, help="LABEL=FOLDER (compared with it)")
    ap.add_argument("--boot", type=int, default=1000)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument(
        "--split", choices=("test", "valid"), default="test", help="valid: search trials"
    )
    args = ap.parse_args()
    first, second = (group_metrics(*g, args.split) for g in (args.first, args.second))
    result = compare(first, second, args.boot, args.seed)
    cmd = command()
    payload = {
        "command": cmd,
        "environment": environment(),
        "seed": args.seed,
        "split": args.split,
        "bootstrap_resamples": args.boot,
        "first": {"label": first["label"], "runs": first["runs"]},
        "second": {"label": second["label"], "runs": second["runs"]},
        "metrics": result,
    }
    table = markdown(first, second, result, args.boot, cmd, args.split)
    write_results(f"paired_{args.tag}", payload, table, args.out)
    print(table)


if __name__ == "__main__":
    main()
