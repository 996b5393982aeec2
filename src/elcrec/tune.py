"""Hyper-parameter search on validation only: ``elcrec tune``.

A random search over a discrete space, with a stated budget (trials x an
epoch cap).  Trial ``i`` draws each option from ``rng([seed, i])``, so a search
is reproducible and can be extended (more trials keep the first ones); trial
0 is a hand-chosen starting point.  Every trial is an ordinary run folder,
``<out>/trial<i>``, trained with ``train.evaluate_test = false``: the test set
is never evaluated, so the choice cannot have seen it.  Trials run as child
processes (the benchmark grid's runner): finished ones are skipped, an
interrupted one resumes from its checkpoint.

The choice (highest best-epoch validation NDCG@20) is written to
``<out>/best.json``; the ``plus`` preset (config.PLUS_SETTINGS) holds the
committed choice per dataset, and a test checks the two agree.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import numpy as np

from elcrec._io import atomic_write_text
from elcrec.benchmark import PRUNED, environment, run_folders, write_csv
from elcrec.config import PLUS_BASE, ConfigError, RunConfig
from elcrec.runs import RunFolder

# Options searched, each over a few values, on top of the `fast` preset and
# config.PLUS_BASE (ELCRec, 2 layers); everything not listed keeps its value.
SPACE: dict[str, list] = {
    "model.loss": ["ce", "sampled_softmax"],
    "model.dropout": [0.3, 0.5],
    "model.n_clusters": [64, 256, 512],
    "model.alpha": [0.0, 0.01, 0.1],
    "model.cl_weight": [0.02, 0.05, 0.1, 0.2],
    "model.intent_cl_weight": [0.0, 0.02, 0.05, 0.1],
    "model.temperature": [0.1, 0.2, 0.5],
    "model.cluster_pull": ["all", "nearest", "sinkhorn"],
    "model.fusion": ["none", "shift"],
    # Users per step: the softmax loss may want more, smaller steps (RecBole
    # makes each position a sample of its own: ~6x the steps per epoch).
    "train.batch_size": [64, 128, 256],
}
# Negatives shared by a batch when a trial draws loss = sampled_softmax.
SAMPLED_NEGATIVES = 1024
# Trial 0: the full softmax, a cosine sequence CL that helped it in a probe
# (benchmarks/results/NOTES.md section 9), small weights on the intent terms.
START = {
    "model.loss": "ce",
    "model.dropout": 0.5,
    "model.n_clusters": 256,
    "model.alpha": 0.01,
    "model.cl_weight": 0.05,
    "model.intent_cl_weight": 0.02,
    "model.temperature": 0.2,
    "model.cluster_pull": "sinkhorn",
    "model.fusion": "none",
    "train.batch_size": 256,
}


# The search behind the `plus` preset (Beauty, one sample per training
# target; its committed copy and results: benchmarks/tune/spaces/prefixes_stage1.json
# and benchmarks/tune/beauty_prefixes/, which a test checks against this).
# `elcrec tune --data FILE` runs it on that file's own validation set.
PLUS_SEARCH = {
    "space": {
        "model.dropout": [0.3, 0.4, 0.5],
        "model.cl_weight": [0.1, 0.2, 0.4],
        "model.intent_cl_weight": [0.02, 0.05, 0.1],
        "model.temperature": [0.5, 1.0],
        "model.alpha": [0.0, 0.01],
        "model.n_clusters": [64, 256],
        "train.batch_size": [256, 512],
    },
    "start": {
        "model.dropout": 0.4,
        "model.cl_weight": 0.2,
        "model.intent_cl_weight": 0.05,
        "model.temperature": 0.5,
        "model.alpha": 0.0,
        "model.n_clusters": 256,
        "train.batch_size": 256,
    },
    "fixed": {
        "model.loss": "ce",
        "model.cluster_pull": "nearest",
        "model.fusion": "shift",
        "train.samples": "prefixes",
        "model.positions": "from_start",
    },
}


def trial_options(
    i: int, seed: int = 0, space: dict | None = None, start: dict | None = None
) -> dict:
    """The options of trial ``i``: a uniform draw per option; trial 0 takes
    ``start``'s values (those the space holds, else the first value)."""
    space = SPACE if space is None else space
    start = START if start is None else start
    if i == 0:
        return {k: start[k] if start.get(k) in v else v[0] for k, v in space.items()}
    rng = np.random.default_rng([seed, i])
    return {k: v[int(rng.integers(len(v)))] for k, v in space.items()}


def load_search(path: str | Path | None) -> dict:
    """A search definition: ``{"space": {...}, "start": {...}, "fixed": {...}}``.
    ``fixed`` holds options every trial takes (e.g. an earlier search's
    choice, to search a narrower space around it); None = SPACE and START."""
    if path is None:
        return {"space": SPACE, "start": START, "fixed": {}}
    raw = json.loads(Path(path).read_text())
    search = {"space": raw["space"], "start": raw.get("start", {}), "fixed": raw.get("fixed", {})}
    both = set(search["space"]) & set(search["fixed"])
    if both:
        raise ConfigError(f"{path}: options both searched and fixed: {sorted(both)}")
    return search


def searched_model(search: dict) -> str:
    """What a search tunes, for its tables' title: the model its fixed options
    name (ELCRec+ unless they name another), and the encoder when that is not
    the model's own."""
    name = search["fixed"].get("model.name", "ELCRec+")
    encoder = search["fixed"].get("model.encoder")
    if encoder and encoder.lower() not in name.lower():
        name += f" on the {encoder} encoder"
    return name


def trial_config(
    base: RunConfig, options: dict, epochs: int, patience: int, seed: int, fixed: dict | None = None
) -> RunConfig:
    """``base`` (the dataset's ``fast`` preset) with PLUS_BASE, the fixed and
    the trial's options and the budget; the test set is switched off."""
    # One dict, later keys winning: a search may fix or search an option
    # PLUS_BASE sets (its model.variant, say).
    cfg = base.replace(
        **{
            **PLUS_BASE,
            "model.n_negatives": SAMPLED_NEGATIVES,
            **(fixed or {}),
            **options,
            "train.epochs": epochs,
            "train.patience": patience,
            "train.seed": seed,
            "train.evaluate_test": False,
        }
    )
    cfg.preset = f"tune:{base.data.source}"
    return cfg


def validation_curve(directory: Path) -> list[float]:
    """A trial's validation NDCG@20, epoch by epoch, as its folder holds it now."""
    return [r["valid/NDCG@20"] for r in RunFolder(directory).epochs()]


def median_pruner(out: str | Path, warmup: int) -> Callable[[Path], str | None]:
    """Optuna's median rule on best-so-far validation: from its ``warmup``-th
    epoch on, a trial stops when its best validation NDCG@20 so far is below
    the median of the other trials' bests over as many epochs.  The others are
    the trials that ran that long, and those that finished sooner (their final
    best).  Best-so-far, not the epoch's own value, so one poor epoch after a
    good one does not stop a trial."""
    out = Path(out)
    judged: dict[Path, int] = {}  # trial -> epochs it was last judged at

    def rule(directory: Path) -> str | None:
        directory = Path(directory).resolve()
        mine = validation_curve(directory)
        epochs = len(mine)
        # The runner asks every second: judge each epoch once, as it ends
        # (again if the curve restarts: a trial resumed without its checkpoint).
        if judged.get(directory) == epochs:
            return None
        judged[directory] = epochs
        if epochs < max(warmup, 1):
            return None
        others = [
            max(curve[:epochs])
            for other in out.glob("trial*")
            if other.resolve() != directory
            and (curve := validation_curve(other))
            and (len(curve) >= epochs or RunFolder(other).finished())
        ]
        best = max(mine)
        median = float(np.median(others)) if others else None
        if median is None or best >= median:
            return None
        return (
            f"best validation NDCG@20 {best:.5f} in its first {epochs} epoch(s), below "
            f"the median {median:.5f} of {len(others)} other trial(s) over as many"
        )

    return rule


def run_tune(
    base: RunConfig,
    out: str | Path,
    trials: int,
    epochs: int,
    patience: int,
    search_seed: int = 0,
    train_seed: int = 1,
    jobs: int = 1,
    deadline_s: float | None = None,
    placement: dict | None = None,
    search: dict | None = None,
    log=print,
    prune_after: int = 0,
) -> dict:
    """Run trials 0..trials-1 (finished ones are skipped); the search
    definition is saved beside them (search.json).  ``prune_after`` > 0 stops
    hopeless trials from that epoch on (median_pruner)."""
    out = Path(out)
    search = search or load_search(None)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "search.json", json.dumps(search, indent=2) + "\n")
    runs = []
    for i in range(trials):
        options = trial_options(i, search_seed, search["space"], search["start"])
        cfg = trial_config(base, options, epochs, patience, train_seed, search["fixed"])
        runs.append((f"trial {i}", out / f"trial{i}", cfg))
    prune = median_pruner(out, prune_after) if prune_after > 0 else None
    return run_folders(runs, jobs, deadline_s, placement, log, prune)


def _search(out: Path) -> dict:
    saved = out / "search.json"
    return json.loads(saved.read_text()) if saved.exists() else load_search(None)


def _searched(out: Path) -> tuple[dict, dict]:
    search = _search(out)
    return search["space"], search["fixed"]


def header(out: str | Path, source: str, command_line: str) -> str:
    """The tables' title, then the line that names the command that runs (or
    resumes) the search.  The title is rebuilt from the search saved in
    ``out`` and the data its trials read, so rewriting an older search's
    tables also mends its title."""
    out = Path(out)
    first = out / "trial0" / "config.json"
    if first.exists():
        source = RunConfig.load(first).data.source
    title = f"# Tuning {searched_model(_search(out))} on {source} (validation only)"
    return f"{title}\n\n{command_line}"


def saved_command_line(header_text: str) -> str | None:
    """What a saved header says below its title (the command, with any note
    added to it), or None when it says nothing there."""
    _, _, rest = header_text.partition("\n\n")
    return rest or None


def summarize(out: str | Path) -> list[dict]:
    """One row per trial folder: its options and its validation curve's best."""
    space, _ = _searched(Path(out))
    rows = []
    for directory in sorted(Path(out).glob("trial*"), key=lambda p: int(p.name[5:])):
        cfg = RunConfig.load(directory / "config.json")
        raw = cfg.to_dict()
        options = {k: raw[k.split(".")[0]][k.split(".")[1]] for k in space}
        curve = RunFolder(directory).epochs()
        best = max(curve, key=lambda r: r["valid/NDCG@20"], default=None)
        rows.append(
            {
                "trial": int(directory.name[5:]),
                **options,
                "finished": (directory / "test_metrics.json").exists(),
                "pruned": (directory / PRUNED).exists(),
                "epochs_run": len(curve),
                "best_epoch": best["epoch"] if best else "",
                "valid_NDCG@20": round(best["valid/NDCG@20"], 5) if best else "",
                "valid_HR@20": round(best["valid/HR@20"], 5) if best else "",
                "wall_s": round(sum(r["train_s"] + r["eval_s"] for r in curve), 1),
            }
        )
    return rows


def choose(rows: list[dict], finished_only: bool = True) -> dict | None:
    """The trial with the highest validation NDCG@20: among finished trials,
    or (under a wall-clock budget) among all that finished an epoch."""
    done = [r for r in rows if (r["finished"] or not finished_only) and r["valid_NDCG@20"] != ""]
    return max(done, key=lambda r: r["valid_NDCG@20"], default=None)


def write_results(out: str | Path, header: str, budget: dict, finished_only: bool = True) -> dict:
    """tune.csv, tune.md and best.json in ``out``."""
    out = Path(out)
    rows = summarize(out)
    best = choose(rows, finished_only)
    space, fixed = _searched(out)
    write_csv(out / "tune.csv", rows)
    payload = {
        "header": header,
        "budget": budget,
        **environment(),
        "selected_on": "validation NDCG@20 (best epoch); test never evaluated",
        "best_trial": None if best is None else best["trial"],
        # What a preset adopts: the fixed options and the chosen trial's.
        "options": None if best is None else {**fixed, **{k: best[k] for k in space}},
        "valid_NDCG@20": None if best is None else best["valid_NDCG@20"],
        "trials_finished": sum(r["finished"] for r in rows),
        "wall_s_total": round(sum(r["wall_s"] for r in rows), 1),
    }
    atomic_write_text(out / "best.json", json.dumps(payload, indent=2) + "\n")
    lines = [
        header,
        "",
        f"Budget: {json.dumps(budget)}  ",
        f"Machine: {payload['machine']}; torch {payload['torch']}; {payload['date']}",
        "",
    ]
    if rows:
        keys = list(rows[0])
        lines += ["| " + " | ".join(keys) + " |", "|" + "---|" * len(keys)]
        lines += ["| " + " | ".join(str(r[k]) for k in keys) + " |" for r in rows]
    lines += ["", f"Chosen (validation only): trial {payload['best_trial']}", ""]
    atomic_write_text(out / "tune.md", "\n".join(lines))
    return payload


def write_preset(out: str | Path, payload: dict, command: str) -> Path:
    """<out>/preset.json: the plus preset with the search's choice, for
    ``elcrec train --preset <out>/preset.json``."""
    path = Path(out) / "preset.json"
    origin = (
        f"chosen on this data's validation by `{command}`: trial {payload['best_trial']}, "
        f"validation NDCG@20 {payload['valid_NDCG@20']} ({Path(out) / 'best.json'})"
    )
    preset_file = {"preset": "plus", "options": payload["options"], "origin": origin}
    atomic_write_text(path, json.dumps(preset_file, indent=2) + "\n")
    return path


__all__ = [
    "PLUS_SEARCH",
    "SPACE",
    "START",
    "choose",
    "load_search",
    "run_tune",
    "summarize",
    "trial_options",
    "write_preset",
    "write_results",
]
