"""elcrec: intent-aware sequential recommendation (ELCRec, NeurIPS 2024).

from elcrec import RunConfig, preset, train, Recommender
result = train(preset("fast", "beauty"), "runs/beauty")
rec = Recommender.load("runs/beauty").recommend([12, 7, 301], k=10)
"""

from elcrec._version import __version__
from elcrec.config import ConfigError, RunConfig, preset
from elcrec.data import DataError, Interactions, Split, synthetic
from elcrec.evaluate import evaluate, nmi
from elcrec.inference import Recommender
from elcrec.models import REGISTRY
from elcrec.models.elcrec import ELCRec, LearnableClusters, SASRec
from elcrec.train import Run, train

__all__ = [
    "ConfigError",
    "DataError",
    "ELCRec",
    "Interactions",
    "LearnableClusters",
    "REGISTRY",
    "Recommender",
    "Run",
    "RunConfig",
    "SASRec",
    "Split",
    "evaluate",
    "nmi",
    "preset",
    "synthetic",
    "__version__",
    "train",
]
