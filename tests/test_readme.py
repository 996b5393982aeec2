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
