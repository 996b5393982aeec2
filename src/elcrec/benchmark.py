"""The benchmark grid: models x datasets x seeds, run piece by piece, and the
tables that compare it with the paper.

Every cell is an ordinary run folder, ``<work>/<preset>/<dataset>/<model>/seed<s>``
(the work folder lies outside the source tree by default), and its summary
(config, test result, per-user test ranks: ``runs.SUMMARY_FILES``) is copied
to the same place under ``<summaries>`` (``benchmarks/grid``, committed), from
which the tables are built.  A cell with a summary is finished and skipped; an
interrupted one resumes from its ``last.pt``.  Cells run as child processes
(``elcrec train --config``), ``jobs`` at a time; at the deadline they are
stopped by SIGTERM (each keeps its last finished epoch) and the tables are written
from whatever has finished.
"""

from __future__ import annotations

import csv
import io
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from elcrec._io import atomic_write_text
from elcrec.config import BENCHMARKS, ConfigError, RunConfig, preset
from elcrec.models import configure
from elcrec.paper import ABLATION, METRICS, paper_metric
from elcrec.runs import RunFolder

# In a run folder: why a search's early-stopping rule stopped this run.
PRUNED = "pruned.txt"

# The paper's ablation rows and the grid models that hold them.
ABLATION_ROWS = {
    "B": "CL4SRec",
    "B+ICL": "ELCRec-B+ICL",
    "B+ELCM": "ELCRec-B+ELCM",
    "ELCRec": "ELCRec",
}


@dataclass(frozen=True)
class Cell:
    model: str
    dataset: str  # beauty | sports | toys | yelp
    seed: int

    def directory(self, work: Path, preset_name: str) -> Path:
        return work / preset_name / self.dataset / self.model / f"seed{self.seed}"

    def config(self, preset_name: str, overrides: dict) -> RunConfig:
        cfg = configure(preset(preset_name, self.dataset), self.model, preset_name)
        return cfg.replace(**{"train.seed": self.seed}, **overrides)


def grid(models, datasets, seeds) -> list[Cell]:
    return [Cell(m, d, s) for d in datasets for m in models for s in seeds]


def run_grid(
    cells: list[Cell],
    work: str | Path,
    preset_name: str = "paper",
    overrides: dict | None = None,
    jobs: int = 1,
    deadline_s: float | None = None,
    placement: dict | None = None,
    log=print,
    summaries: str | Path | None = None,
) -> dict[str, int]:
    """Run the unfinished cells, ``jobs`` at a time, until done or the deadline.

    ``overrides`` change what a cell computes (they must match when it resumes);
    ``placement`` only where it runs (``train.device``, ``data.data_dir``,
    ``train.threads``).  With ``summaries``, a cell whose summary is there is
    finished, and every cell that finishes leaves its summary there.  Returns
    counts of finished, interrupted and failed cells.
    """
    overrides = dict(overrides or {})
    done = [c for c in cells if summaries and _summary(c, summaries, preset_name).finished()]
    runs = [
        (
            f"{c.model} {c.dataset} seed {c.seed}",
            c.directory(Path(work), preset_name),
            c.config(preset_name, overrides),
        )
        for c in cells
        if c not in done
    ]
    try:
        counts = run_folders(runs, jobs, deadline_s, placement, log)
    finally:  # (also when interrupted: the cells that finished keep their summaries)
        if summaries:
            sync_summaries(cells, work, summaries, preset_name)
    counts["finished"] += len(done)
    return counts


def _summary(cell: Cell, summaries: str | Path, preset_name: str) -> RunFolder:
    return RunFolder(cell.directory(Path(summaries), preset_name))


def sync_summaries(cells: list[Cell], work: str | Path, summaries: str | Path, preset_name: str):
    """Copy the summary of every finished cell in ``work`` to ``summaries``."""
    for c in cells:
        folder = RunFolder(c.directory(Path(work), preset_name))
        if folder.finished():
            folder.copy_summary(_summary(c, summaries, preset_name).path)


def run_folders(
    runs: list[tuple[str, Path, RunConfig]],
    jobs: int = 1,
    deadline_s: float | None = None,
    placement: dict | None = None,
    log=print,
    prune: Callable[[Path], str | None] | None = None,
) -> dict[str, int]:
    """Run (label, folder, config) triples as child processes, ``jobs`` at a
    time: a finished folder is skipped, an interrupted one resumes, a folder
    holding another config is refused before anything starts.

    ``prune(folder)`` (a search's early-stopping rule) is asked before a run
    starts and every second while it runs; when it gives a reason, the run is
    stopped as the deadline stops it and ``PRUNED`` in its folder records the
    reason, so that it is skipped from then on as a finished one is."""
    placement = dict(placement or {})
    todo, pruned_before = [], 0
    for label, directory, cfg in runs:
        directory = Path(directory)
        if (directory / PRUNED).exists():
            pruned_before += 1
            continue
        if (directory / "test_metrics.json").exists():
            continue
        config_path = directory / "config.json"
        if config_path.exists() and RunConfig.load(config_path).identity() != cfg.identity():
            raise ConfigError(f"{directory} holds a run with another config; use another --work")
        directory.mkdir(parents=True, exist_ok=True)
        if not config_path.exists():
            cfg.save(config_path)
        todo.append((label, directory))
    log(
        f"{len(runs) - len(todo)} of {len(runs)} runs already finished"
        + (f" ({pruned_before} of them pruned)" if pruned_before else "")
        + f"; {len(todo)} to run"
    )
    stop_at = None if deadline_s is None else time.monotonic() + deadline_s
    running: list[tuple[str, Path, subprocess.Popen, object]] = []
    finished = len(runs) - len(todo) - pruned_before
    counts = {"finished": finished, "interrupted": 0, "failed": 0, "pruned": pruned_before}

    def pruned(label: str, directory: Path) -> bool:
        reason = prune(directory) if prune is not None else None
        if reason:
            atomic_write_text(directory / PRUNED, reason + "\n")
            counts["pruned"] += 1
            log(f"pruned {label}: {reason}")
        return bool(reason)

    try:
        while todo or running:
            if stop_at is not None and time.monotonic() > stop_at:
                log(f"deadline reached: interrupting {len(running)} runs, {len(todo)} not started")
                break
            while todo and len(running) < jobs:
                label, directory = todo.pop(0)
                if not pruned(label, directory):  # (its curve so far may already say so)
                    running.append((label, directory, *_start(directory, placement)))
                    log(f"started {label}")
            time.sleep(1.0)
            for entry in list(running):
                label, directory, proc, logfile = entry
                if proc.poll() is None:
                    if pruned(label, directory):
                        running.remove(entry)
                        _stop([entry])
                    continue
                running.remove(entry)
                logfile.close()
                ok = proc.returncode == 0 and (directory / "test_metrics.json").exists()
                counts["finished" if ok else "failed"] += 1
                log(f"{'finished' if ok else 'FAILED (see log.txt)'} {label}")
    finally:
        counts["interrupted"] += _stop(running)
    return counts


def _stop(running: list) -> int:
    """Stop child runs; each keeps its last finished epoch (SIGTERM: a shell's
    background jobs ignore SIGINT, and so would their children)."""
    for _, _, proc, _ in running:
        proc.send_signal(signal.SIGTERM)
    for _, _, proc, logfile in running:
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        logfile.close()
    return len(running)


def _start(directory: Path, placement: dict):
    cmd = [
        sys.executable,
        "-m",
        "elcrec.cli",
        "train",
        "--config",
        str(directory / "config.json"),
        "--run-dir",
        str(directory),
        "--no-progress",
    ]
    if placement:
        cmd += ["--set", *(f"{k}={v}" for k, v in placement.items())]
    logfile = open(directory / "log.txt", "a")
    proc = subprocess.Popen(cmd, stdout=logfile, stderr=subprocess.STDOUT, env=dict(os.environ))
    return proc, logfile


def environment() -> dict:
    """The machine, versions and date a result was measured with."""
    import numpy
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else None
    return {
        "machine": f"{cpu}, {os.cpu_count()} cores" + (f", {gpu}" if gpu else ""),
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "torch_threads": torch.get_num_threads(),
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


# --------------------------------------------------------------------------- #
# Tables
# --------------------------------------------------------------------------- #
def collect(summaries: str | Path, preset_name: str = "paper") -> list[dict]:
    """One row per finished cell (its summary under ``summaries``)."""
    rows = []
    for path in sorted(Path(summaries, preset_name).glob("*/*/seed*/test_metrics.json")):
        result = json.loads(path.read_text())
        dataset, model = path.parts[-4], path.parts[-3]
        # What the step ran in: recorded since train.precision = auto; before
        # it, the config's value is what ran (fp32 in configs older than the option).
        config = path.with_name("config.json")
        asked = (
            json.loads(config.read_text())["train"].get("precision", "fp32")
            if config.exists()
            else ""
        )
        precision = result.get("precision", asked)
        rows.append(
            {
                "model": model,
                "dataset": BENCHMARKS.get(dataset, dataset),
                "seed": result["seed"],
                **{m: result["test"][m] for m in METRICS},
                "best_epoch": result["best_epoch"],
                "epochs_run": result["epochs_run"],
                "wall_s": round(result["wall_s"], 1),
                "time_to_best_s": round(result.get("time_to_best_s", float("nan")), 1),
                "device": result.get("device", ""),
                "precision": precision,
                # How users spread over intents (models with intents only).
                "largest_share": result.get("intents", {}).get("largest_share", ""),
                "effective_intents": result.get("intents", {}).get("effective_intents", ""),
            }
        )
    return rows


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.mean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def table1(rows: list[dict]) -> list[dict]:
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in rows:
        groups.setdefault((r["model"], r["dataset"]), []).append(r)
    out = []
    for (model, dataset), runs in sorted(groups.items()):
        for metric in METRICS:
            mean, std = _mean_std([r[metric] for r in runs])
            paper = paper_metric(model, dataset, metric)
            out.append(
                {
                    "model": model,
                    "dataset": dataset,
                    "metric": metric,
                    "mean": round(mean, 5),
                    "std": round(std, 5),
                    "n_seeds": len(runs),
                    "paper": "" if paper is None else paper,
                    "rel_diff": "" if paper is None else round(mean / paper - 1, 4),
                }
            )
    return out


def ablation(rows: list[dict]) -> list[dict]:
    out = []
    for dataset in sorted({r["dataset"] for r in rows}):
        for variant, model in ABLATION_ROWS.items():
            sums = [
                sum(r[m] for m in METRICS)
                for r in rows
                if r["dataset"] == dataset and r["model"] == model
            ]
            if not sums:
                continue
            mean, std = _mean_std(sums)
            out.append(
                {
                    "dataset": dataset,
                    "variant": variant,
                    "sum_mean": round(mean, 5),
                    "sum_std": round(std, 5),
                    "n_seeds": len(sums),
                    "paper": ABLATION.get(dataset, {}).get(variant, ""),
                }
            )
    return out


def write_tables(summaries: str | Path, results: str | Path, preset_name: str, header: str) -> dict:
    """table1.{csv,md,json}, ablation.csv and grid_runs.csv from the finished cells."""
    results = Path(results)
    results.mkdir(parents=True, exist_ok=True)
    rows = collect(summaries, preset_name)
    t1, ab = table1(rows), ablation(rows)
    write_csv(results / "table1.csv", t1)
    write_csv(results / "ablation.csv", ab)
    write_csv(results / "grid_runs.csv", rows)
    payload = {"header": header, "preset": preset_name, "table1": t1, "ablation": ab, "runs": rows}
    atomic_write_text(results / "table1.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(results / "table1.md", _markdown(header, t1, ab, rows))
    return payload


# Beyond the paper (issue 6): model -> the preset its cells run under, then
# the preset's earlier version, whose cells stand in on a dataset the current
# one has not run yet (marked in the table).  Then the frequency-filter
# encoder, alone and with ELCRec's clusters on it.
BEYOND_MODELS = {
    "ELCRec": ("paper",),
    "SASRec-CE": ("fast", "fast-v1"),
    "ELCRec+": ("plus", "plus-v1"),
    "BSARec": ("fast",),
    "BSARec+ELCM": ("fast",),
}


def beyond(summaries: str | Path) -> list[dict]:
    """Each model of BEYOND_MODELS per dataset and metric:
    mean and std over seeds, the paper's ELCRec and the relative difference,
    the preset the cells ran under, and the intents' spread (largest share of
    users, effective number)."""
    rows = []
    for model, presets in BEYOND_MODELS.items():
        taken: set[str] = set()  # datasets a newer preset has cells on
        for preset_name in presets:
            cells = [r for r in collect(summaries, preset_name) if r["model"] == model]
            cells = [{**r, "preset": preset_name} for r in cells if r["dataset"] not in taken]
            taken |= {r["dataset"] for r in cells}
            rows += cells
    out = []
    for t in table1(rows):
        runs = [r for r in rows if r["model"] == t["model"] and r["dataset"] == t["dataset"]]
        paper = paper_metric("ELCRec", t["dataset"], t["metric"])
        spread = {}
        for key in ("largest_share", "effective_intents"):
            values = [r[key] for r in runs if r[key] != ""]
            spread[key] = round(statistics.mean(values), 4) if values else ""
        out.append(
            {
                **{k: t[k] for k in ("model", "dataset", "metric", "mean", "std", "n_seeds")},
                "preset": runs[0]["preset"],
                "paper_elcrec": paper,
                "vs_paper_elcrec": round(t["mean"] / paper - 1, 4),
                **spread,
            }
        )
    return out


def beyond_names() -> str:
    """The table's models in words: "A, B and C"."""
    names = list(BEYOND_MODELS)
    return ", ".join(names[:-1]) + " and " + names[-1]


def beyond_commands() -> list[str]:
    """One `elcrec benchmark` command per column of beyond.md: every
    benchmark, the 3 seeds the table's means are over."""
    return [
        f"elcrec benchmark --preset {presets[0]} --models {model} "
        f"--datasets {' '.join(BENCHMARKS)} --seeds 1 2 3"
        for model, presets in BEYOND_MODELS.items()
    ]


def write_beyond(summaries: str | Path, results: str | Path) -> list[dict]:
    """beyond.{csv,md} from the finished cells of the models' presets (nothing
    is written when none has finished). The table draws on every preset's
    cells, so its header names the commands that fill all columns, not the
    one run that happened to rewrite it."""
    rows = beyond(summaries)
    if not rows:
        return rows
    results = Path(results)
    write_csv(results / "beyond.csv", rows)
    header = [
        f"# Beyond the paper: {beyond_names()} (means over seeds)",
        "",
        f"Built from the finished cells under `{summaries}` by any `elcrec benchmark` run "
        "(add `--tables-only` to rewrite it without training). The commands that fill it:",
        "",
        *(f"    {c}" for c in beyond_commands()),
    ]
    lines = [*header, "", "| dataset | metric | paper ELCRec | " + " | ".join(BEYOND_MODELS) + " |"]
    lines.append("|---|---|---|" + "---|" * len(BEYOND_MODELS))
    by_key = {(r["dataset"], r["metric"], r["model"]): r for r in rows}
    for dataset in sorted({r["dataset"] for r in rows}):
        for metric in METRICS:
            cells = []
            for model in BEYOND_MODELS:
                r = by_key.get((dataset, metric, model))
                earlier = r is not None and r["preset"] != BEYOND_MODELS[model][0]
                cells.append(
                    "—"
                    if r is None
                    else f"{r['mean']:.4f} ± {r['std']:.4f} (n={r['n_seeds']}, "
                    f"{r['vs_paper_elcrec']:+.1%}){' †' if earlier else ''}"
                )
            paper = paper_metric("ELCRec", dataset, metric)
            lines.append(f"| {dataset} | {metric} | {paper:.4f} | " + " | ".join(cells) + " |")
    presets = ", ".join(f"{model} `--preset {p[0]}`" for model, p in BEYOND_MODELS.items())
    lines += [
        "",
        f"Each column's cells run under its preset ({presets}); — : no finished cell yet "
        "(the column's command above runs it); † : cells of the preset's earlier version "
        "(`fast-v1`, `plus-v1`: before the speed-ups), standing in where the current "
        "preset has not run yet.",
    ]
    lines += ["", "Intents (mean over seeds): largest share of users, effective number", ""]
    lines += ["| dataset | model | largest share | effective intents |", "|---|---|---|---|"]
    for r in rows:
        if r["metric"] == METRICS[0] and r["largest_share"] != "":
            lines.append(
                f"| {r['dataset']} | {r['model']} | {r['largest_share']} | "
                f"{r['effective_intents']} |"
            )
    atomic_write_text(results / "beyond.md", "\n".join(lines) + "\n")
    return rows


def write_csv(path: Path, rows: list[dict]) -> None:
    if not rows:
        return
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=list(rows[0]), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    atomic_write_text(path, buf.getvalue())


def _markdown(header: str, t1: list[dict], ab: list[dict], rows: list[dict]) -> str:
    lines = [header, "", "## Table 1: test metrics, mean ± std over seeds (paper, difference)", ""]
    lines += ["| dataset | model | seeds | " + " | ".join(METRICS) + " |"]
    lines += ["|---|---|---|" + "---|" * len(METRICS)]
    by_cell: dict[tuple[str, str], dict[str, dict]] = {}
    for r in t1:
        by_cell.setdefault((r["dataset"], r["model"]), {})[r["metric"]] = r
    for (dataset, model), metrics in by_cell.items():
        cells = []
        for m in METRICS:
            r = metrics[m]
            text = f"{r['mean']:.4f} ± {r['std']:.4f}"
            if r["paper"] != "":
                text += f" ({r['paper']:.4f}, {r['rel_diff']:+.1%})"
            cells.append(text)
        n = next(iter(metrics.values()))["n_seeds"]
        lines.append(f"| {dataset} | {model} | {n} | " + " | ".join(cells) + " |")
    if ab:
        lines += ["", "## Ablation: HR@5+HR@20+NDCG@5+NDCG@20 (B = backbone)", ""]
        lines += ["| dataset | variant | seeds | ours | paper |", "|---|---|---|---|---|"]
        for r in ab:
            lines.append(
                f"| {r['dataset']} | {r['variant']} | {r['n_seeds']} | "
                f"{r['sum_mean']:.4f} ± {r['sum_std']:.4f} | {r['paper']} |"
            )
    lines += [
        "",
        "## Runs",
        "",
        "| dataset | model | seed | best epoch | epochs | wall (s) | device |",
    ]
    lines += ["|---|---|---|---|---|---|---|"]
    for r in rows:
        lines.append(
            f"| {r['dataset']} | {r['model']} | {r['seed']} | {r['best_epoch']} | "
            f"{r['epochs_run']} | {r['wall_s']} | {r['device']} |"
        )
    return "\n".join(lines) + "\n"
