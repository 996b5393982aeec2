"""The models, by the names the tables use.

A model is one file in this folder (its ``nn.Module``, subclassing
:class:`~elcrec.models.base.SequentialModel`) and one line in ``REGISTRY``
below: the class, as ``"file:Class"``, and the options it sets on top of a
preset.  ``elcrec train --model NAME``, ``elcrec benchmark --models`` and the
Python API all read this table; the chosen name is saved in the run's config
(``model.name``), so a run folder rebuilds its own model.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field

from elcrec.config import (
    BEFORE_PREFIX_SPEEDUPS,
    BEFORE_SPEEDUPS,
    LEGACY_SUFFIX,
    PREFIX_SPEEDUPS,
    ConfigError,
    ModelConfig,
    RunConfig,
    legacy,
)
from elcrec.models.base import Batch, SequentialModel


@dataclass(frozen=True)
class ModelEntry:
    source: str  # "file:Class" in this folder
    options: dict = field(default_factory=dict)  # dotted config options on top of the preset
    preset: str | None = None  # the one preset the model exists under, if any
    # options that differ by benchmark (its key: "sports"), on top of `options`;
    # other data take `options` alone
    per_dataset: dict[str, dict] = field(default_factory=dict)

    def model_class(self) -> type[SequentialModel]:
        module, _, cls = self.source.partition(":")
        return getattr(importlib.import_module(f"{__name__}.{module}"), cls)


# BSARec under its authors' published Beauty settings (their run's log: 2
# layers, 1 head, dropout 0.5, c = 5, alpha = 0.7, lr 5e-4, batch 256,
# patience 10); on the other benchmarks their paper's per-dataset alpha, c,
# heads and learning rate (as the ECIR 2026 reproducibility study of BSARec
# lists them for its runs).
BSAREC = {
    "model.variant": "sasrec",
    "model.encoder": "bsarec",
    "model.loss": "ce",
    "model.n_layers": 2,
    "model.n_heads": 1,
    "model.dropout": 0.5,
    "model.filter_c": 5,
    "model.filter_alpha": 0.7,
    "model.positions": "from_end",  # theirs: slots of the left-padded T
    "train.samples": "prefixes",
    "train.lr": 5e-4,
    "train.batch_size": 256,
    "train.patience": 10,
}
BSAREC_PER_DATASET = {
    "sports": {"model.filter_alpha": 0.3, "model.n_heads": 4, "train.lr": 1e-3},
    "toys": {"model.filter_c": 3, "train.lr": 1e-3},
    "yelp": {"model.filter_c": 3, "model.n_heads": 4, "train.lr": 1e-3},
}
# The search's choice (benchmarks/tune/beauty_bsarec_intents_noviews, its
# best.json): the lightest intents of its space.
BSAREC_ELCM_CHOICE = {
    "model.intent_cl_weight": 0.02,
    "model.alpha": 0.0,
    "model.temperature": 1.0,
    "model.cluster_pull": "nearest",
    "model.n_clusters": 256,
    "model.cl_similarity": "cosine",
}
BSAREC_ELCM_SEARCH = "beauty_bsarec_intents_noviews"

REGISTRY: dict[str, ModelEntry] = {
    # the paper's Table 1
    "SASRec": ModelEntry("elcrec:ELCRec", {"model.variant": "sasrec"}),
    "CL4SRec": ModelEntry("elcrec:ELCRec", {"model.variant": "backbone"}),  # ablation "B"
    "ICLRec": ModelEntry("iclrec:ICLRec", {"model.n_clusters": 256}),  # its authors' k
    "ELCRec": ModelEntry("elcrec:ELCRec", {"model.variant": "full"}),
    # the paper's ablation (B = CL4SRec)
    "ELCRec-B+ICL": ModelEntry("elcrec:ELCRec", {"model.variant": "icl"}),
    "ELCRec-B+ELCM": ModelEntry("elcrec:ELCRec", {"model.variant": "elcm"}),
    # beyond the paper: SASRec with a softmax over the whole catalogue as RecBole
    # trains it (2 layers, one sample per training target, positions from its
    # first item, early stopping after 10 epochs) ...
    "SASRec-CE": ModelEntry(
        "elcrec:ELCRec",
        {
            "model.variant": "sasrec",
            "model.loss": "ce",
            "model.n_layers": 2,
            "train.samples": "prefixes",
            "model.positions": "from_start",
            "train.patience": 10,  # (a bound; the plateau schedule stops it sooner)
            **PREFIX_SPEEDUPS,
        },
    ),
    # ... and ELCRec+, whose options all come from the `plus` preset
    "ELCRec+": ModelEntry("elcrec:ELCRec", {"model.variant": "full"}, preset="plus"),
    # BSARec (Shin et al., AAAI 2024): attention mixed with a frequency filter,
    # full softmax on one sample per training target (BSAREC below) ...
    "BSARec": ModelEntry("elcrec:ELCRec", BSAREC, per_dataset=BSAREC_PER_DATASET),
    # ... and ELCRec's learnable clusters on it: the cluster loss and the intent
    # contrast, without augmented views (model.variant = intents; the ablation's
    # "B+ELCM" with BSARec as B), under the intent options the view-free
    # search on Beauty chose on validation (BSAREC_ELCM_CHOICE)
    "BSARec+ELCM": ModelEntry(
        "elcrec:ELCRec",
        {**BSAREC, "model.variant": "intents", "model.pooling": "last", **BSAREC_ELCM_CHOICE},
        per_dataset=BSAREC_PER_DATASET,
    ),
}
DEFAULT_MODEL = "ELCRec"


def entry(name: str) -> ModelEntry:
    if name not in REGISTRY:
        raise ConfigError(f"unknown model {name!r}: expected one of {', '.join(REGISTRY)}")
    return REGISTRY[name]


def configure(cfg: RunConfig, name: str, preset_name: str | None = None) -> RunConfig:
    """``cfg`` with model ``name``'s options (and its name recorded); refuses a
    model that exists under another preset only."""
    e = entry(name)
    base = preset_name.removesuffix(LEGACY_SUFFIX) if preset_name else None
    if e.preset and base is not None and base != e.preset:
        raise ConfigError(f"{name} runs under --preset {e.preset} (or {e.preset}{LEGACY_SUFFIX})")
    options = {**e.options, **e.per_dataset.get(cfg.data.source, {})}
    cfg = cfg.replace(**options, **{"model.name": name})
    if legacy(preset_name):  # the model's own speed-ups undone too
        before = {k: v for k, v in BEFORE_PREFIX_SPEEDUPS.items() if k in options}
        cfg = cfg.replace(**BEFORE_SPEEDUPS, **before)
    return cfg


def build_model(n_items: int, max_len: int, cfg: ModelConfig) -> SequentialModel:
    """The model a config names, untrained."""
    return entry(cfg.name).model_class()(n_items, max_len, cfg)


__all__ = [
    "BSAREC",
    "BSAREC_PER_DATASET",
    "BSAREC_ELCM_CHOICE",
    "BSAREC_ELCM_SEARCH",
    "REGISTRY",
    "Batch",
    "ModelEntry",
    "SequentialModel",
    "build_model",
    "configure",
]
