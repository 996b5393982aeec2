"""elcrec: intent-aware sequential recommendation (ELCRec, NeurIPS 2024).

from elcrec import RunConfig, preset, train, Recommender
result = train(preset("fast", "beauty"), "runs/beauty")
rec = Recommender.load("runs/beauty").recommend([12, 7, 301], k=10)
"""

__version__ = "0.1.0"

from elcrec.config import ConfigError, RunConfig, preset  # noqa: E402
from elcrec.data import DataError, Interactions, Split, synthetic  # noqa: E402
from elcrec.evaluate import evaluate, nmi  # noqa: E402
from elcrec.inference import Recommender  # noqa: E402
from elcrec.model import ELCRec, LearnableClusters, SASRec  # noqa: E402
from elcrec.train import Run, train  # noqa: E402

__all__ = [
    "ConfigError",
    "DataError",
    "ELCRec",
    "Interactions",
    "LearnableClusters",
    "Recommender",
    "Run",
    "RunConfig",
    "SASRec",
    "Split",
    "evaluate",
    "nmi",
    "preset",
    "synthetic",
    "train",
]
