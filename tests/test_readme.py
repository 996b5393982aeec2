"""The README's clustering example runs as written and does what it says."""

import re
from pathlib import Path

import torch


def test_readme_clustering_example_runs(capsys):
    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("### The clustering module on its own", 1)[1]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    names: dict = {}
    exec(compile(code, "README.md", "exec"), names)
    intent, clusters = names["intent"], names["clusters"]
    # it printed each user's intent id, as its comment says
    assert capsys.readouterr().out.strip() == str(intent[:10])
    assert intent.shape == (256,) and intent.dtype == torch.int64
    assert 0 <= int(intent.min()) and int(intent.max()) < 8
    assert torch.isfinite(names["loss"])
    # the centers stayed near the unit sphere (renormalised before every step)
    norms = clusters.centers.detach().norm(dim=1)
    assert torch.allclose(norms, torch.ones(8), atol=0.05)


def test_readme_own_data_commands_run_as_written(tmp_path):
    """The three commands of "Your own data", one by one, in a fresh folder."""
    import json
    import os
    import shlex
    import subprocess
    import sys

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("## Your own data in three commands", 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, re.S).group(1)
    lines = [line.split("#")[0].strip() for line in block.splitlines() if line.strip()]
    assert len(lines) == 3 and all(line.startswith("elcrec ") for line in lines)
    env = {**os.environ, "ELCREC_WORK": str(tmp_path / "work"), "OMP_NUM_THREADS": "1"}
    outputs = []
    for line in lines:
        for command in line.split("&&"):
            argv = [sys.executable, "-m", "elcrec.cli", *shlex.split(command)[1:]]
            done = subprocess.run(
                argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=600
            )
            assert done.returncode == 0, (command, done.stderr[-2000:])
            outputs.append(done)
    # the log, the run, a user's recommendations (in the file's ids) and the intents
    header = (tmp_path / "clicks.csv").read_text().splitlines()[0]
    assert header == "user_id,item_id,timestamp"
    config = json.loads((tmp_path / "runs/clicks/config.json").read_text())
    assert config["model"]["name"] == "ELCRec+" and "Beauty" in config["origin"]
    assert "NDCG@20" in outputs[1].stdout  # the readable table after training
    rec = json.loads(outputs[2].stdout)
    assert rec["user"] == "42" and len(rec["items"]) == 5 and isinstance(rec["intent"], int)
    logged = {
        int(line.split(",")[1]) for line in (tmp_path / "clicks.csv").read_text().splitlines()[1:]
    }
    assert set(rec["items"]) <= logged
    assert (tmp_path / "runs/clicks/intents/users.csv").exists()
