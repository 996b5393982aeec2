"""Time `elcrec intents` and `elcrec report` on a trained Beauty run (issue 4:
both under 2 minutes on this machine), and keep what they produced.

    python benchmarks/intents_report_beauty.py RUN_DIR

Writes benchmarks/results/intents_report_beauty.{json,md}; the report's
screenshot goes to benchmarks/results/report_beauty.png when Chromium is found.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import RESULTS, command, environment, write_results  # noqa: E402


def timed(args: list[str]) -> tuple[float, str]:
    t0 = time.perf_counter()
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    return time.perf_counter() - t0, out.strip()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("run")
    args = ap.parse_args()
    out = Path(tempfile.mkdtemp(prefix="elcrec-intents-"))
    elcrec = [sys.executable, "-m", "elcrec.cli"]
    intents_s, intents_msg = timed([*elcrec, "intents", args.run, "--out", str(out)])
    report_s, report_msg = timed([*elcrec, "report", args.run, "--out", str(out / "r.html")])
    browser = shutil.which("chromium") or shutil.which("chromium-browser")
    if browser:
        subprocess.run(
            [
                browser,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--hide-scrollbars",
                f"--screenshot={RESULTS / 'report_beauty.png'}",
                "--window-size=1200,2600",
                (out / "r.html").as_uri(),
            ],
            capture_output=True,
            check=True,
        )
    result = json.loads((Path(args.run) / "test_metrics.json").read_text())
    payload = {
        "run": args.run,
        "intents_s": round(intents_s, 1),
        "report_s": round(report_s, 1),
        "intents_output": intents_msg,
        "report_bytes": (out / "r.html").stat().st_size,
        "run_test": result["test"],
        "command": command(),
        **environment(),
    }
    md = [
        "# `elcrec intents` and `elcrec report` on a trained Beauty run",
        "",
        f"Command: `{payload['command']}`  ",
        f"Machine: {payload['machine']}; torch {payload['torch']}; {payload['date']}",
        "",
        "| command | wall time (s) |",
        "|---|---|",
        f"| `elcrec intents {args.run}` | {payload['intents_s']} |",
        f"| `elcrec report {args.run}` (t-SNE of 3,000 users) | {payload['report_s']} |",
        "",
        intents_msg,
        "",
        "Screenshot of the report: `report_beauty.png`." if browser else "",
        "",
    ]
    write_results("intents_report_beauty", payload, "\n".join(md))
    shutil.rmtree(out, ignore_errors=True)
    print(json.dumps({k: payload[k] for k in ("intents_s", "report_s")}))


if __name__ == "__main__":
    main()
