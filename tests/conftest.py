import os
from pathlib import Path

import pytest

from elcrec import RunConfig


def tiny_config(**overrides) -> RunConfig:
    """A config that trains in a second or two on CPU."""
    cfg = RunConfig()
    cfg.data.synthetic_users = 300
    cfg.data.synthetic_items = 200
    cfg.data.synthetic_intents = 4
    cfg.data.max_len = 20
    cfg.model.n_clusters = 8
    cfg.train.batch_size = 64
    cfg.train.epochs = 2
    cfg.train.bucket_batches = 2
    cfg.train.eval_batch_size = 128
    cfg.train.device = "cpu"
    return cfg.replace(**overrides) if overrides else cfg.validate()


@pytest.fixture(autouse=True, scope="session")
def work_folder(tmp_path_factory):
    """Run folders that commands put in the default work folder stay in the
    test's temporary space, not in the home folder."""
    os.environ["ELCREC_WORK"] = str(tmp_path_factory.mktemp("work"))


@pytest.fixture
def tiny():
    return tiny_config


@pytest.fixture
def beauty_dir():
    folder = os.environ.get("ELCREC_DATA_DIR", "")
    if not folder or not (Path(folder) / "Beauty.txt").exists():
        pytest.skip("Beauty.txt not available (set ELCREC_DATA_DIR)")
    return folder
