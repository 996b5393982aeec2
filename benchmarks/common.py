"""Shared helpers for benchmark scripts: machine/version info and result writing."""

from __future__ import annotations

import json
import shlex
import sys
from pathlib import Path

from elcrec.benchmark import environment  # noqa: F401  (re-exported)

RESULTS = Path(__file__).resolve().parent / "results"


def time_epochs(cfg, epochs: int) -> dict:
    """Train ``epochs`` epochs of ``cfg`` from scratch in a scratch folder; the
    median epoch time over the epochs after the first, the median validation
    pass, and the peak RSS of this process (run one config per process)."""
    import shutil
    import statistics
    import tempfile

    from elcrec import Run

    work = Path(tempfile.mkdtemp(prefix="elcrec-timing-"))
    try:
        Run(cfg, work / "run").fit(progress=False, max_epochs=epochs)
        lines = [json.loads(x) for x in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    finally:
        shutil.rmtree(work, ignore_errors=True)
    train_s = [x["train_s"] for x in lines]
    return {
        "train_epoch_s": statistics.median(train_s[1:] if len(train_s) > 1 else train_s),
        "eval_pass_s": statistics.median(x["eval_s"] for x in lines),
        "peak_rss_mb": max(x["peak_rss_mb"] for x in lines),
        "epochs": len(lines),
        "train_s_per_epoch": train_s,
        "options": cfg.to_dict(),
    }


def command() -> str:
    return "python " + " ".join(shlex.quote(a) for a in sys.argv)


def write_results(name: str, payload: dict, markdown: str, folder: Path = RESULTS) -> None:
    from elcrec._io import atomic_write_text

    folder.mkdir(parents=True, exist_ok=True)
    atomic_write_text(folder / f"{name}.json", json.dumps(payload, indent=2) + "\n")
    atomic_write_text(folder / f"{name}.md", markdown)
