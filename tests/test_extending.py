"""Adding a model takes what the README says it takes: one new file in
src/elcrec/models/ and one line in REGISTRY; then `elcrec train --model NAME`
trains it and every command that reads a run folder can load it.  The test
does exactly that on a copy of the package."""

import json
import shutil
from pathlib import Path

from tests.helpers import elcrec

PACKAGE = Path(__file__).resolve().parents[1] / "src" / "elcrec"

NEW_FILE = '''\
"""A bag of items: the user is the mean of the embeddings of their items."""

import torch.nn.functional as F
from torch import nn

from elcrec.models.base import SequentialModel


class BagOfItems(SequentialModel):
    def __init__(self, n_items, max_len, cfg):
        super().__init__()
        self.max_len = max_len
        self.emb = nn.Embedding(n_items + 1, cfg.hidden, padding_idx=0)

    def user_vectors(self, items):
        real = (items > 0).unsqueeze(-1)
        return (self.emb(items) * real).sum(1) / real.sum(1).clamp(min=1)

    def item_vectors(self):
        return self.emb.weight[1:]

    def forward(self, batch):
        target = batch.pos[:, -1]  # the next item after the whole input
        keep = target > 0
        logits = self.user_vectors(batch.items[keep]) @ self.item_vectors().T
        loss = F.cross_entropy(logits, target[keep] - 1)
        return {"next_item": loss, "total": loss}
'''
REGISTRY_LINE = '    "BagOfItems": ModelEntry("bag_of_items:BagOfItems"),\n'


def test_a_new_model_is_one_file_and_one_registry_line(tmp_path):
    src = tmp_path / "src"
    shutil.copytree(PACKAGE, src / "elcrec", ignore=shutil.ignore_patterns("__pycache__"))
    models = src / "elcrec" / "models"
    (models / "bag_of_items.py").write_text(NEW_FILE)
    registry = models / "__init__.py"
    text = registry.read_text()
    anchor = "REGISTRY: dict[str, ModelEntry] = {\n"
    assert anchor in text  # where the README says the line goes
    registry.write_text(text.replace(anchor, anchor + REGISTRY_LINE))

    run = tmp_path / "run"
    tiny = ["data.synthetic_users=300", "data.synthetic_items=200", "train.device=cpu"]
    train = ["train", "--model", "BagOfItems", "--epochs", "1", "--run-dir", run, "--set", *tiny]
    done = elcrec(train, tmp_path, PYTHONPATH=src)
    assert done.returncode == 0, done.stderr
    result = json.loads((run / "test_metrics.json").read_text())
    assert result["epochs_run"] == 1 and 0.0 <= result["test"]["HR@20"] <= 1.0
    assert "intents" not in result  # the new model has none
    assert json.loads((run / "config.json").read_text())["model"]["name"] == "BagOfItems"
    # the run folder rebuilds the new model: recommend from it
    rec = elcrec(["recommend", run, "--items", "1", "2", "3", "--k", "5"], tmp_path, PYTHONPATH=src)
    assert rec.returncode == 0, rec.stderr
    assert len(json.loads(rec.stdout)["items"]) == 5
    # ... and fit intents to its users (its representation: the query vector)
    intents = elcrec(["intents", run, "--k", "3"], tmp_path, PYTHONPATH=src)
    assert intents.returncode == 0, intents.stderr
    assert "300 users in 3 of 3 intents (kmeans)" in intents.stdout
