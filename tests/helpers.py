"""What several test files share: running the command line in a child
process, and loading a benchmark script as a module."""

import importlib.util
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def elcrec(args, cwd, timeout=900, **env) -> subprocess.CompletedProcess:
    """``elcrec ARGS`` in a child process (one torch thread), with ``env`` added
    to the environment; its output captured as text."""
    return subprocess.run(
        [sys.executable, "-m", "elcrec.cli", *map(str, args)],
        cwd=cwd,
        env={**os.environ, "OMP_NUM_THREADS": "1", **{k: str(v) for k, v in env.items()}},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def script(name):
    """benchmarks/<name>.py as a module (the folder goes on sys.path, as when run)."""
    folder = ROOT / "benchmarks"
    sys.path.insert(0, str(folder))
    spec = importlib.util.spec_from_file_location(name, folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module  # child processes find its functions by name
    spec.loader.exec_module(module)
    return module
