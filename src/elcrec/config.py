"""Run configuration: one validated dataclass tree, saved with every run.

A run is fully described by a :class:`RunConfig`; ``config.json`` in the run
folder is that object, resolved (presets applied) and validated, so
``elcrec train --config runs/x/config.json`` repeats the run exactly.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import tomllib

from elcrec._io import atomic_write_text


def choice(default, *others):
    """An option and the values it allows (checked by RunConfig.validate)."""
    return field(default=default, metadata={"choices": (default, *others)})


def choices(section: type, name: str) -> tuple[str, ...]:
    """The values a string option allows, e.g. ``choices(TrainConfig, "device")``."""
    return next(f.metadata["choices"] for f in fields(section) if f.name == name)


# The four benchmark files and the authors' settings behind Table 1
# (docs/method.md; the authors' run scripts).
BENCHMARKS = {
    "beauty": "Beauty",
    "sports": "Sports_and_Outdoors",
    "toys": "Toys_and_Games",
    "yelp": "Yelp",
}
PAPER_SETTINGS = {
    "beauty": dict(n_layers=1, n_clusters=256, alpha=10.0, fusion="shift"),
    "sports": dict(n_layers=2, n_clusters=512, alpha=1.0, fusion="concat"),
    "toys": dict(n_layers=3, n_clusters=512, alpha=1.0, fusion="concat"),
    "yelp": dict(n_layers=2, n_clusters=256, alpha=0.1, fusion="concat"),
}

# Beyond the paper: the `plus` preset (ELCRec+) = `fast` + PLUS_BASE + the
# options a search chose on validation (PLUS_SETTINGS); PLUS_SEARCHES names
# the search each dataset's options come from, benchmarks/tune/<name>/, whose
# best.json holds the choice, its budget and its trials (a test checks that
# the two agree).  Other data take Beauty's.
PLUS_BASE = {
    "model.variant": "full",
    "model.n_layers": 2,
    # dot-product contrasts grow with the output norms under a softmax loss
    "model.cl_similarity": "cosine",
}
_PREFIX_CHOICE = {
    "model.loss": "ce",
    "model.cluster_pull": "nearest",
    "model.fusion": "shift",
    "train.samples": "prefixes",
    "model.positions": "from_start",
    "model.dropout": 0.4,
    "model.cl_weight": 0.4,
    "model.intent_cl_weight": 0.1,
    "model.temperature": 1.0,
    "model.alpha": 0.0,
    "model.n_clusters": 256,
    "train.batch_size": 256,
}
PLUS_SETTINGS: dict[str, dict] = {name: _PREFIX_CHOICE for name in BENCHMARKS}
PLUS_SEARCHES = {name: "beauty_prefixes" for name in BENCHMARKS}
PLUS_PATIENCE = 10  # the softmax loss peaks within ~20 epochs (measured)

# The same models in a fraction of the time (benchmarks/results/
# time_to_accuracy.md).  `fast` and `plus`, so every model under them, take
# the training step in bfloat16 where the processor computes it natively
# ("auto") with the fused kernels (the same model and loss:
# tests/test_model.py) ...
SPEEDUPS = {"train.precision": "auto", "model.kernels": "fused"}
# ... and the per-prefix softmax models (SASRec-CE, ELCRec+) estimate the
# softmax over the catalogue from 1024 popularity-drawn items and the batch's
# targets, log-Q corrected (a tenth of Beauty's catalogue; evaluation still
# ranks every item), decay the learning rate at each flat validation epoch
# and stop at the third instead of waiting out a constant rate's noise.
PREFIX_SPEEDUPS = {
    "model.loss": "sampled_softmax",
    "model.negative_sampler": "popularity",
    "model.in_batch_negatives": True,
    "model.n_negatives": 1024,
    "train.lr_decay_patience": 1,
    "train.lr_decays": 2,
}
# `fast-v1` and `plus-v1` are the two presets as they were before: the
# options above at their earlier values (BEFORE_SPEEDUPS and
# BEFORE_PREFIX_SPEEDUPS, below the option classes), so earlier runs repeat
# bit for bit.
LEGACY_SUFFIX = "-v1"


def legacy(preset_name: str | None) -> bool:
    """A `-v1` preset: fast or plus as before the speed-ups."""
    return bool(preset_name) and preset_name.endswith(LEGACY_SUFFIX)


@dataclass
class DataConfig:
    # A benchmark name (beauty, sports, toys, yelp), "synthetic", or a file path.
    source: str = "synthetic"
    # For files: "sequences" (user item item ...), "pairs" (user item), or
    # "log" (CSV/TSV/Parquet with named columns); "auto" guesses from the suffix.
    format: str = choice("auto", "sequences", "pairs", "log")
    user_col: str = "user_id"
    item_col: str = "item_id"
    time_col: str = "timestamp"
    kcore: int = 0  # 0 = no filtering; else iterate user/item k-core to a fixed point
    drop_short_users: bool = False  # else users with < 3 items are an error
    data_dir: str | None = None  # benchmark folder; else $ELCREC_DATA_DIR
    max_len: int = 50  # T: most recent items kept per sequence
    # Synthetic generator (used when source == "synthetic").
    synthetic_users: int = 6000
    synthetic_items: int = 3000
    synthetic_intents: int = 16
    synthetic_seed: int = 0


@dataclass
class ModelConfig:
    # The model, by its name in elcrec.models.REGISTRY (which sets the options
    # that make it that model); its class is built from this name.
    name: str = "ELCRec"
    # ELCRec's parts: sasrec (next-item loss only) | backbone (+ sequence CL,
    # = CL4SRec) | icl (+ intent CL) | elcm (+ cluster loss) | full (ELCRec)
    # | intents (cluster loss and intent CL on each sample itself: no views,
    # no sequence CL, so no augmentation passes).
    variant: str = choice("full", "sasrec", "backbone", "icl", "elcm", "intents")
    hidden: int = 64
    n_layers: int = 1
    n_heads: int = 2
    dropout: float = 0.5  # hidden and attention dropout
    n_clusters: int = 16  # the built-in synthetic data plants 16 intents
    # Weight of the cluster loss.  The paper's 10 (Beauty) assumes the authors'
    # pooling, whose padding outputs absorb the loss's pull of every user toward
    # one point; with masked-mean pooling that pull collapses the real outputs
    # (docs/method.md), so the fast default is 0.1.
    alpha: float = 0.1
    cl_weight: float = 0.1  # weight of the sequence CL
    intent_cl_weight: float = 0.1  # weight of the intent CL
    temperature: float = 1.0
    # Similarity inside both contrasts: the authors' dot product, or cosine.
    cl_similarity: str = choice("dot", "cosine")
    center_init: str = choice("kmeans", "random")
    # The user representation that is clustered and meets the intent CL:
    # mean_padded = the authors' mean over all T positions, padding included.
    pooling: str = choice("masked_mean", "mean_padded", "concat", "last")
    # Sequence-CL representation: "concat" of position outputs (the authors'),
    # "mean", or "last" (the output that scores items, as CL4SRec and DuoRec).
    seq_cl_repr: str = choice("mean", "concat", "last")
    # With pooling = mean_padded: compute one padding position beyond each batch's
    # longest sequence and let it stand for the padding positions further left,
    # instead of padding every batch to T (exact when a batch is T wide).
    pad_approx: bool = False
    # Position ids: "from_end" (SASRec's and the authors': the last item always
    # takes the last position embedding) or "from_start" (RecBole's: with causal
    # attention every training position then equals a per-prefix sample).
    positions: str = choice("from_end", "from_start")
    # Intent fusion in the sequence CL, per position: add the nearest center
    # (the authors' Beauty setting), append it (their other datasets), or none.
    fusion: str = choice("shift", "concat", "none")
    # Next-item loss: "bce" with one sampled negative per position (the paper's),
    # "ce" = softmax over the whole catalogue, "sampled_softmax" = softmax over
    # the target and n_negatives items shared by the batch (for catalogues where
    # a full softmax per step costs too much).
    loss: str = choice("bce", "ce", "sampled_softmax")
    n_negatives: int = 256  # loss = sampled_softmax only
    # sampled_softmax: negatives drawn uniformly or by training popularity;
    # with in_batch_negatives the batch's other targets join them.  Every
    # candidate's logit is then corrected by minus log of its expected count
    # among the candidates (log-Q), accidental hits of the target removed.
    # (Uniform draws alone shift every logit alike: no correction needed.)
    negative_sampler: str = choice("uniform", "popularity")
    in_batch_negatives: bool = False
    # The intent CL's positive: the center of the un-augmented sequence (the
    # authors') or each view's own nearest center.
    intent_positive: str = choice("original", "view")
    # The cluster loss's push: the authors' mean over all k^2 center pairs
    # (zero diagonal included), or over the k(k-1) distinct pairs.
    push_norm: str = choice("all_pairs", "off_diagonal")
    # The cluster loss's pull: toward every center (the paper's), the nearest
    # only, or a Sinkhorn-balanced soft assignment.
    cluster_pull: str = choice("all", "nearest", "sinkhorn")
    # The two contrastive views of a training sample: "augment" = two random
    # crop / mask / reorder views (the paper's); "same_target" = the sample
    # itself and another training sample with the same next item (DuoRec's
    # supervised positive; itself again, under new dropout, if none exists).
    views: str = choice("augment", "same_target")
    # Augmentation ratios (crop keeps tao, mask hides gamma, reorder shuffles beta).
    crop_ratio: float = 0.2
    mask_ratio: float = 0.7
    reorder_ratio: float = 0.2
    # Encoder passes per step: 5 = the authors' (views encoded again for the
    # intent CL), 3 = the two views shared by both contrasts.
    encoder_passes: int = choice(3, 5)
    # When a step puts the centers back on the unit sphere: at its start, so
    # every loss sees unit centers, or (the authors' order) after the sequence
    # CL, whose intent fusion then adds the centers as the last optimizer step
    # left them (off the sphere); the cluster loss and intent CL see unit ones.
    center_renorm: str = choice("step_start", "after_seq_cl")
    # How a training step computes what it computes: "torch" = torch's dropout
    # and cross-entropy (earlier runs repeat bit for bit); "fused" = dropout
    # masks from uniform draws (torch's CPU bernoulli is ~4x slower), the
    # attention written out when it drops, a softmax cross-entropy whose
    # gradient is formed in its forward pass, and, when only the last
    # position is scored (per-prefix samples, no intents), the last block
    # run for that position alone.  Same model, same loss; other random draws.
    kernels: str = choice("torch", "fused")
    # The encoder's blocks: SASRec's self-attention, or BSARec's (Shin et al.,
    # AAAI 2024) self-attention mixed with a frequency filter over positions:
    # each block's attention output weighted 1 - filter_alpha and, weighted
    # filter_alpha, the sequence's filter_c // 2 + 1 lowest frequencies plus
    # its higher ones scaled by a learned beta^2 per channel.  The filter sees
    # every position (it has no causal mask), so it needs per-prefix samples
    # (train.samples = prefixes, whose loss sits at the last position only),
    # and each sequence is left-padded to data.max_len, as BSARec's authors pad
    # it, so the frequencies do not depend on the batch's width.
    encoder: str = choice("sasrec", "bsarec")
    filter_c: int = 5
    filter_alpha: float = 0.7


@dataclass
class TrainConfig:
    seed: int = 1
    epochs: int = 300
    batch_size: int = 256
    lr: float = 1e-3
    weight_decay: float = 0.0
    patience: int = 40  # epochs without a better validation NDCG@20
    # Learning-rate decay on a plateau: after every lr_decay_patience epochs
    # without a better validation NDCG@20 the learning rate is multiplied by
    # lr_decay_factor (0 = a constant rate), at most lr_decays times; the
    # plateau after the last decay ends the run (patience still applies).  A
    # decay lifts a flat curve at once, so a run can stop a few epochs after
    # it instead of waiting out the noise of a constant rate.
    lr_decay_patience: int = 0
    lr_decay_factor: float = 0.3
    lr_decays: int = 2
    # Length bucketing: sort users by length inside pools of this many batches
    # so a batch is padded to its own longest sequence, not to T.
    # 0 = every batch padded to T (the authors' way).
    bucket_batches: int = 32
    # Training samples: "users", one window per user with a target at every
    # position (the paper's); "prefixes", one sample per training target
    # with the loss at its last position (RecBole's); or "window", prefixes
    # of each user's last max_len training items only, the first of them
    # predicted from an empty input (FMLP-Rec's and BSARec's released code).
    samples: str = choice("users", "prefixes", "window")
    # History items at evaluation: minus infinity (correct) or the authors' zero.
    history_mask: str = choice("neg_inf", "zero")
    eval_batch_size: int = 2048
    # Validation each epoch on a fixed random sample of this many users (0 =
    # all): at a million users ranking everyone every epoch costs more than
    # the epoch.  The test pass always ranks every user.
    valid_users: int = 0
    device: str = choice("auto", "cpu", "cuda")
    threads: int = 0  # 0 = torch default
    # The training step's matrix products in bfloat16 (torch.autocast; the
    # weights, optimizer and evaluation stay float32): faster where the
    # processor has bf16 units (AVX512-BF16, AMX, CUDA), and about 11 times
    # slower where it has not (an AVX2-only CPU emulates them; measured on
    # BSARec's step).  auto = bf16 where the units are, else fp32; the run's
    # test_metrics.json records which it took.
    precision: str = choice("fp32", "bf16", "auto")
    # torch.use_deterministic_algorithms: without it two CPU processes with the
    # same seed drift apart by float noise (measured: ~1e-8 at epoch 0).
    deterministic: bool = True
    # False for tuning trials (elcrec tune): the test set is never evaluated, so
    # nothing chosen from these runs can have seen it.
    evaluate_test: bool = True


def _defaults(options: dict) -> dict:
    """The default values of those of ``options`` that change one."""
    sections = {"model": ModelConfig(), "train": TrainConfig()}
    out = {}
    for key, value in options.items():
        section, name = key.split(".")
        default = getattr(sections[section], name)
        if default != value:
            out[key] = default
    return out


# The speed-ups' options at their earlier values, which are the defaults,
# but for the full softmax the per-prefix models trained with before.
BEFORE_SPEEDUPS = _defaults(SPEEDUPS)
BEFORE_PREFIX_SPEEDUPS = {**_defaults(PREFIX_SPEEDUPS), "model.loss": "ce"}


# Options of earlier versions, so that their run folders still load (and
# resume): removed ones are dropped, moved ones moved, and a model's name is
# derived from the switches that named it then.
_RETIRED = {("train", "log_every_epoch")}  # read by nothing
_MOVED = {("train", "encoder_passes"): ("model", "encoder_passes")}
_VARIANT_NAMES = {
    "sasrec": "SASRec",
    "backbone": "CL4SRec",
    "icl": "ELCRec-B+ICL",
    "elcm": "ELCRec-B+ELCM",
    "full": "ELCRec",
}


def _migrate(raw: dict[str, Any]) -> dict[str, Any]:
    raw = {k: dict(v) if isinstance(v, dict) else v for k, v in raw.items()}
    for section, key in _RETIRED:
        raw.get(section, {}).pop(key, None)
    for (section, key), (to_section, to_key) in _MOVED.items():
        if key in raw.get(section, {}):
            raw.setdefault(to_section, {})[to_key] = raw[section].pop(key)
    model = raw.get("model")
    if model is not None and "name" not in model and "variant" in model:
        variant = model["variant"]
        if variant == "iclrec":
            model["name"], model["variant"] = "ICLRec", "full"
        elif str(raw.get("preset") or "").startswith("plus"):
            model["name"] = "ELCRec+"
        elif variant == "sasrec" and model.get("loss") == "ce":
            model["name"] = "SASRec-CE"
        else:
            model["name"] = _VARIANT_NAMES.get(variant, variant)
    return raw


@dataclass
class RunConfig:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    preset: str | None = None  # e.g. "paper" or "fast", recorded for the reader
    # Where the preset's options came from (a search, another dataset's
    # choice), recorded for the reader; not part of what the run computes.
    origin: str | None = None

    def validate(self) -> RunConfig:
        for section in (self.data, self.model, self.train):
            for f in fields(section):
                value = getattr(section, f.name)
                allowed = f.metadata.get("choices")
                if allowed and value not in allowed:
                    raise ConfigError(
                        f"{type(section).__name__[:-6].lower()}.{f.name} = {value!r}: "
                        f"expected one of {', '.join(map(str, allowed))}"
                    )
        positive = [
            ("data.max_len", self.data.max_len),
            ("model.hidden", self.model.hidden),
            ("model.n_layers", self.model.n_layers),
            ("model.n_heads", self.model.n_heads),
            ("model.n_clusters", self.model.n_clusters),
            ("model.n_negatives", self.model.n_negatives),
            ("train.batch_size", self.train.batch_size),
            ("train.epochs", self.train.epochs),
            ("train.eval_batch_size", self.train.eval_batch_size),
        ]
        for name, value in positive:
            if not isinstance(value, int) or value < 1:
                raise ConfigError(f"{name} = {value!r}: expected a positive integer")
        if self.model.hidden % self.model.n_heads:
            raise ConfigError("model.hidden must be divisible by model.n_heads")
        if not 0.0 <= self.model.dropout < 1.0:
            raise ConfigError(f"model.dropout = {self.model.dropout}: expected 0 <= p < 1")
        for name in ("crop_ratio", "mask_ratio", "reorder_ratio"):
            if not 0.0 <= getattr(self.model, name) <= 1.0:
                raise ConfigError(f"model.{name} must lie in [0, 1]")
        if self.model.temperature <= 0:
            raise ConfigError("model.temperature must be positive")
        if self.train.patience < 1:
            raise ConfigError("train.patience must be at least 1")
        if self.train.lr_decay_patience < 0 or self.train.lr_decays < 0:
            raise ConfigError("train.lr_decay_patience and train.lr_decays must not be negative")
        if not 0.0 < self.train.lr_decay_factor < 1.0:
            raise ConfigError(
                f"train.lr_decay_factor = {self.train.lr_decay_factor}: expected 0 < factor < 1"
            )
        if not isinstance(self.train.valid_users, int) or self.train.valid_users < 0:
            raise ConfigError(
                f"train.valid_users = {self.train.valid_users!r}: expected 0 (all) or a count"
            )
        if self.model.views == "same_target" and self.train.samples == "window":
            # the partners are drawn among prefix targets; a window's first
            # target (predicted from nothing) is not one of them
            raise ConfigError("model.views = same_target cannot go with train.samples = window")
        if self.model.encoder == "bsarec":
            if self.train.samples == "users":
                raise ConfigError(
                    "model.encoder = bsarec needs train.samples = prefixes or window: its "
                    "frequency filter mixes later positions into earlier ones, so one sample "
                    "per user with a target at every position would leak them"
                )
            if self.model.pad_approx:
                raise ConfigError("model.encoder = bsarec cannot go with model.pad_approx")
            if not isinstance(self.model.filter_c, int) or self.model.filter_c < 1:
                raise ConfigError(f"model.filter_c = {self.model.filter_c!r}: expected >= 1")
            if not 0.0 <= self.model.filter_alpha <= 1.0:
                raise ConfigError(
                    f"model.filter_alpha = {self.model.filter_alpha}: expected 0 <= alpha <= 1"
                )
        if self.model.positions == "from_start" and self.model.pad_approx:
            raise ConfigError("model.positions = from_start cannot go with model.pad_approx")
        return self

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    # Where a run executes, not what it computes: a run may resume elsewhere.
    PLACEMENT = (("data", "data_dir"), ("train", "device"), ("train", "threads"))

    def identity(self) -> dict[str, Any]:
        """The config without its placement fields and notes: two runs with
        the same identity compute the same thing (on another machine or device)."""
        raw = self.to_dict()
        for section, key in self.PLACEMENT:
            raw[section].pop(key)
        raw.pop("origin")
        return raw

    @classmethod
    def from_dict(cls, raw: dict[str, Any], origin: str = "config") -> RunConfig:
        cfg = cls()
        raw = _migrate(raw)
        unknown_top = set(raw) - {"data", "model", "train", "preset", "origin"}
        if unknown_top:
            raise ConfigError(f"{origin}: unknown section(s) {sorted(unknown_top)}")
        cfg.preset, cfg.origin = raw.get("preset"), raw.get("origin")
        for name in ("data", "model", "train"):
            section = getattr(cfg, name)
            values = raw.get(name, {})
            known = {f.name: f for f in fields(section)}
            for key, value in values.items():
                if key not in known:
                    raise ConfigError(f"{origin}: unknown option {name}.{key}")
                setattr(section, key, _coerce(value, getattr(section, key), f"{name}.{key}"))
        return cfg.validate()

    @classmethod
    def load(cls, path: str | Path) -> RunConfig:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
        try:
            raw = tomllib.loads(text) if path.suffix == ".toml" else json.loads(text)
        except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
            raise ConfigError(f"{path}: not valid {path.suffix[1:] or 'json'}: {e}") from None
        return cls.from_dict(raw, origin=str(path))

    def save(self, path: str | Path) -> None:
        atomic_write_text(path, json.dumps(self.to_dict(), indent=2) + "\n")

    def replace(self, **overrides: Any) -> RunConfig:
        """Apply dotted overrides, e.g. ``cfg.replace(**{"train.seed": 2})``."""
        cfg = RunConfig.from_dict(self.to_dict())
        for dotted, value in overrides.items():
            section_name, _, key = dotted.partition(".")
            section = getattr(cfg, section_name, None)
            if section is None or not hasattr(section, key):
                raise ConfigError(f"unknown option {dotted}")
            setattr(section, key, _coerce(value, getattr(section, key), dotted))
        return cfg.validate()


class ConfigError(ValueError):
    """A configuration value is missing, unknown or out of range."""


def parse_overrides(items: list[str]) -> dict[str, str]:
    """``["model.alpha=1", ...]`` (a command line's ``--set``) -> the dotted
    overrides ``RunConfig.replace`` takes; values stay strings until then."""
    overrides = {}
    for item in items:
        if "=" not in item:
            raise ConfigError(f"--set {item!r}: expected SECTION.KEY=VALUE")
        key, value = item.split("=", 1)
        overrides[key] = value
    return overrides


def _coerce(value: Any, current: Any, name: str) -> Any:
    """Convert strings from the command line to the type the field holds."""
    if isinstance(current, bool):
        if isinstance(value, str):
            if value.lower() in ("1", "true", "yes"):
                return True
            if value.lower() in ("0", "false", "no"):
                return False
            raise ConfigError(f"{name} = {value!r}: expected true or false")
        return bool(value)
    try:
        if isinstance(current, int) and not isinstance(value, bool):
            if isinstance(value, float) and not value.is_integer():
                raise ValueError
            return int(value)
        if isinstance(current, float):
            return float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{name} = {value!r}: expected a {type(current).__name__}") from None
    return value


def preset(name: str, data: str = "beauty") -> RunConfig:
    """Named starting points, for a benchmark or any other data.

    * ``paper``: the authors' code and settings for a benchmark
      (docs/method.md, "the authors' code"): k-means initialised centers,
      mean pooling over all T positions with padding, per-position fusion,
      five encoder passes, the centers renormalised where the authors do it,
      each batch padded to T, history items masked by zero.  Slow, faithful.
    * ``fast``: the paper's layers, k, fusion and dropout with the cheap
      choices: length-bucketed batches, masked-mean pooling, mean sequence-CL
      representation, three encoder passes, minus-infinity masking, and
      alpha = 0.1 (see ModelConfig.alpha for why not the paper's alpha).
    * ``plus`` (ELCRec+): ``fast`` with two layers and the options a search
      chose on validation (PLUS_SETTINGS; the search: PLUS_SEARCHES).
    * a preset file (``*.json``, written by ``elcrec tune --data FILE``): its
      base preset with the options its search chose.

    Data other than the four benchmarks (a file, ``synthetic``) take Beauty's
    settings; ``cfg.origin`` says so.
    """
    if name.endswith(".json"):
        return _preset_file(name, data)
    if legacy(name) and name.removesuffix(LEGACY_SUFFIX) in ("fast", "plus"):
        cfg = preset(name.removesuffix(LEGACY_SUFFIX), data).replace(**BEFORE_SPEEDUPS)
        if name.startswith("plus"):
            cfg = cfg.replace(**BEFORE_PREFIX_SPEEDUPS)
        cfg.preset = cfg.preset.replace(":", f"{LEGACY_SUFFIX}:", 1)
        cfg.origin += " (as before the speed-ups: the preset's version 1)"
        return cfg
    key = data.lower()
    benchmark = key in BENCHMARKS
    settings = key if benchmark else "beauty"
    cfg = RunConfig(preset=f"{name}:{key if benchmark else data}")
    cfg.data.source = key if benchmark else data
    for k, value in PAPER_SETTINGS[settings].items():
        setattr(cfg.model, k, value)
    if name == "paper":
        cfg.model.pooling = "mean_padded"
        cfg.model.seq_cl_repr = "concat"
        cfg.model.center_init = "kmeans"
        cfg.train.bucket_batches = 0
        cfg.model.encoder_passes = 5
        cfg.model.center_renorm = "after_seq_cl"
        cfg.train.history_mask = "zero"
        origin = f"the authors' settings for {BENCHMARKS[settings]}"
    elif name == "fast":
        cfg.model.pooling = "masked_mean"
        cfg.model.seq_cl_repr = "mean"
        cfg.model.alpha = 0.1
        cfg.train.bucket_batches = 32
        cfg.model.encoder_passes = 3
        cfg.train.history_mask = "neg_inf"
        cfg = cfg.replace(**SPEEDUPS)
        origin = f"the authors' layers, k and fusion for {BENCHMARKS[settings]}"
    elif name == "plus":
        fast = preset("fast", data)
        cfg = fast.replace(
            **{
                **PLUS_BASE,
                **PLUS_SETTINGS[settings],
                **PREFIX_SPEEDUPS,  # (in place of the search's full softmax)
                "train.patience": PLUS_PATIENCE,
                "model.name": "ELCRec+",
            }
        )
        cfg.preset = fast.preset.replace("fast:", "plus:")
        origin = (
            f"options chosen on {BENCHMARKS[settings]}'s validation by the search "
            f"benchmarks/tune/{PLUS_SEARCHES[settings]} (its best.json)"
        )
    else:
        raise ConfigError(
            f"unknown preset {name!r}: expected paper, fast, plus, fast-v1, plus-v1 "
            "or a preset file (.json)"
        )
    if not benchmark:
        origin += f"; {data} is not one of the benchmarks, so it takes Beauty's"
    cfg.origin = origin
    return cfg.validate()


def _preset_file(path: str, data: str) -> RunConfig:
    """A preset file: ``{"preset": base, "options": {...}, "origin": "..."}``."""
    try:
        raw = json.loads(Path(path).read_text())
    except OSError as e:
        raise ConfigError(f"{path}: cannot read ({e.strerror})") from None
    except json.JSONDecodeError as e:
        raise ConfigError(f"{path}: not valid json: {e}") from None
    for key in ("preset", "options"):
        if key not in raw:
            raise ConfigError(f"{path}: no {key!r} field (a preset file has preset, options)")
    if raw["preset"].endswith(".json"):
        raise ConfigError(f"{path}: its base preset must be paper, fast or plus")
    cfg = preset(raw["preset"], data).replace(**raw["options"])
    cfg.preset = f"{path}:{data}"
    cfg.origin = raw.get("origin", f"the options in {path}")
    return cfg


__all__ = [
    "BENCHMARKS",
    "BEFORE_PREFIX_SPEEDUPS",
    "BEFORE_SPEEDUPS",
    "ConfigError",
    "DataConfig",
    "ModelConfig",
    "PAPER_SETTINGS",
    "PREFIX_SPEEDUPS",
    "PLUS_BASE",
    "PLUS_SEARCHES",
    "PLUS_SETTINGS",
    "RunConfig",
    "SPEEDUPS",
    "TrainConfig",
    "choices",
    "legacy",
    "parse_overrides",
    "preset",
]
