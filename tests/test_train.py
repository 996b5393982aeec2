"""Training smoke tests, run folders, resuming and determinism."""

import importlib
import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch

from elcrec import Recommender, Run, RunConfig, train
from elcrec.config import ConfigError
from elcrec.models import REGISTRY, Batch, configure


def cli_train(config_path, run_dir) -> list[str]:
    return [
        sys.executable,
        "-m",
        "elcrec.cli",
        "train",
        "--config",
        str(config_path),
        "--run-dir",
        str(run_dir),
        "--no-progress",
    ]


def epoch_records(run_dir) -> list[dict]:
    """metrics.jsonl without the timing fields, which differ between runs."""
    lines = (run_dir / "metrics.jsonl").read_text().splitlines()
    return [
        {k: v for k, v in json.loads(x).items() if not k.endswith("_s") and k != "peak_rss_mb"}
        for x in lines
    ]


@pytest.mark.parametrize("name", list(REGISTRY))
def test_every_registered_model_trains_one_epoch(tiny, tmp_path, name):
    cfg = configure(tiny(), name).replace(**{"train.epochs": 1, "model.n_clusters": 8})
    result = train(cfg, tmp_path / "run", progress=False)
    assert set(result["test"]) >= {"HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"}
    assert 0.0 <= result["test"]["HR@20"] <= 1.0
    assert result["epochs_run"] == 1
    assert RunConfig.load(tmp_path / "run" / "config.json").model.name == name
    rec = Recommender.load(tmp_path / "run")
    assert type(rec.model).__name__ == REGISTRY[name].source.split(":")[1]
    has_intents = name not in ("SASRec", "SASRec-CE", "CL4SRec", "BSARec")
    assert rec.model.uses_intents == has_intents
    if has_intents:  # synthetic data: intents are compared with the planted ones
        assert 0.0 <= result["intents"]["nmi"] <= 1.0
    else:
        assert "intents" not in result


@pytest.mark.parametrize("samples", ["prefixes", "window"])
@pytest.mark.parametrize("variant", ["sasrec", "backbone", "intents"])
def test_bsarec_trains_with_the_bce_loss_alone_and_with_a_sequence_contrast(
    tiny, tmp_path, variant, samples
):
    """What the Yelp search on the frequency-filter encoder draws: one sampled
    negative per training target (per-prefix samples, or the released
    pipeline's window with its empty inputs, whose views are empty too), with
    or without the sequence contrast, or with the view-free intents; every
    loss term it computes is finite."""
    options = {"model.loss": "bce", "model.variant": variant, "train.samples": samples}
    if variant == "intents":
        options |= {"model.pooling": "last", "model.n_clusters": 8}
    cfg = configure(tiny(), "BSARec").replace(**options, **{"train.epochs": 1})
    result = train(cfg, tmp_path / "run", progress=False)
    (record,) = epoch_records(tmp_path / "run")
    losses = {k.split("/")[1]: v for k, v in record.items() if k.startswith("loss/")}
    extra = {"sasrec": set(), "backbone": {"seq_cl"}, "intents": {"cluster", "intent_cl"}}
    expected = {"next_item", "total"} | extra[variant]
    assert set(losses) == expected
    assert all(np.isfinite(v) for v in losses.values())
    assert 0.0 <= result["test"]["NDCG@20"] <= 1.0


def test_paper_style_options_train(tiny, tmp_path):
    cfg = tiny(
        **{
            "model.pooling": "mean_padded",
            "train.bucket_batches": 0,
            "model.encoder_passes": 5,
            "train.history_mask": "zero",
            "model.center_init": "random",
            "model.intent_positive": "view",
            "model.push_norm": "off_diagonal",
            "model.fusion": "concat",
            "model.views": "same_target",
            "model.center_renorm": "after_seq_cl",
            "train.epochs": 1,
        }
    )
    result = train(cfg, tmp_path / "paper", progress=False)
    # the run used these options: they are what its folder says it ran
    saved = RunConfig.load(tmp_path / "paper" / "config.json")
    assert saved.identity() == cfg.identity()
    assert saved.model.pooling == "mean_padded" and saved.model.encoder_passes == 5
    # every loss term of the full model was computed, and is finite
    (record,) = epoch_records(tmp_path / "paper")
    losses = {k.split("/")[1]: v for k, v in record.items() if k.startswith("loss/")}
    assert set(losses) == {"next_item", "cluster", "seq_cl", "intent_cl", "total"}
    assert all(np.isfinite(v) for v in losses.values())
    # the test pass under the authors' zero masking is the one reported, and
    # never above the correct one's (history items can only take places)
    assert result["history_mask"] == "zero"
    assert result["test"] == result["test_by_history_mask"]["zero"]
    by = result["test_by_history_mask"]
    assert by["zero"]["NDCG@20"] <= by["neg_inf"]["NDCG@20"] + 1e-12
    assert result["epochs_run"] == 1 and 0.0 <= result["intents"]["nmi"] <= 1.0


def test_run_folder_contents_and_repeat_from_config(tiny, tmp_path):
    run = tmp_path / "run"
    result = train(tiny(), run, progress=False)
    for name in (
        "config.json",
        "store/store.json",
        "store/flat.npy",
        "metrics.jsonl",
        "last.pt",
        "best.pt",
        "test_metrics.json",
    ):
        assert (run / name).exists(), name
    assert list((run / "tb").iterdir()), "TensorBoard events"
    lines = [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]
    assert [x["epoch"] for x in lines] == [0, 1]
    assert {"loss/next_item", "valid/NDCG@20", "train_s", "eval_s"} <= set(lines[0])
    # repeating the run from its saved config gives the same result
    again = train(RunConfig.load(run / "config.json"), tmp_path / "again", progress=False)
    assert again["test"] == result["test"]


def test_finished_run_is_not_retrained_and_other_config_refused(tiny, tmp_path):
    run = tmp_path / "run"
    first = train(tiny(), run, progress=False)
    assert train(tiny(), run, progress=False) == first
    with pytest.raises(ConfigError, match="different config"):
        train(tiny(**{"train.seed": 9}), run, progress=False)


def test_resume_gives_the_same_result_as_one_go(tiny, tmp_path):
    cfg = tiny(**{"train.epochs": 4})
    whole = train(cfg, tmp_path / "whole", progress=False)
    run = Run(cfg, tmp_path / "pieces")
    assert run.fit(progress=False, max_epochs=1)["unfinished"]
    assert run.fit(progress=False, max_epochs=2)["unfinished"]
    pieces = Run(cfg, tmp_path / "pieces").fit(progress=False)
    assert pieces["test"] == whole["test"] and pieces["best_epoch"] == whole["best_epoch"]

    # per-epoch losses and validation metrics agree too (to float noise: the
    # resumed process starts from tensors loaded from disk)
    whole_records = epoch_records(tmp_path / "whole")
    piece_records = epoch_records(tmp_path / "pieces")
    assert [r["epoch"] for r in piece_records] == [0, 1, 2, 3]
    for a, b in zip(whole_records, piece_records):
        assert a == pytest.approx(b, rel=1e-4)


def test_resume_without_the_best_weights_fails_before_training(tiny, tmp_path):
    """A folder brought back with last.pt but not best.pt cannot finish its test pass."""
    cfg = tiny(**{"train.epochs": 4})
    run_dir = tmp_path / "run"
    assert Run(cfg, run_dir).fit(progress=False, max_epochs=2)["unfinished"]
    (run_dir / "best.pt").unlink()
    epochs_before = len((run_dir / "metrics.jsonl").read_text().splitlines())
    with pytest.raises(ConfigError, match=r"best\.pt is missing.*best epoch"):
        Run(cfg, run_dir).fit(progress=False)
    # nothing was trained or overwritten
    assert len((run_dir / "metrics.jsonl").read_text().splitlines()) == epochs_before
    assert (run_dir / "last.pt").exists() and not (run_dir / "test_metrics.json").exists()


def test_killed_process_resumes_to_the_same_result(tiny, tmp_path):
    """Kill a training process mid-run (SIGKILL), resume it, compare with one go."""
    cfg = tiny(**{"train.epochs": 6, "data.synthetic_users": 600})
    cfg.save(tmp_path / "config.json")
    whole = train(cfg, tmp_path / "whole", progress=False)
    run_dir = tmp_path / "killed"
    cmd = cli_train(tmp_path / "config.json", run_dir)
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while time.time() < deadline:
        metrics = run_dir / "metrics.jsonl"
        if metrics.exists() and len(metrics.read_text().splitlines()) >= 2:
            break
        time.sleep(0.05)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "test_metrics.json").exists(), "killed too late to test resuming"
    resumed = subprocess.run([*cmd, "--json"], capture_output=True, text=True, check=True)
    assert json.loads(resumed.stdout)["test"] == whole["test"]


def test_two_processes_with_one_seed_agree_bit_for_bit(tiny, tmp_path):
    cfg = tiny(**{"train.epochs": 3, "data.synthetic_users": 600})
    cfg.save(tmp_path / "config.json")
    for name in ("a", "b"):
        subprocess.run(
            cli_train(tmp_path / "config.json", tmp_path / name), check=True, capture_output=True
        )
    assert epoch_records(tmp_path / "a") == epoch_records(tmp_path / "b")


def test_seeded_runs_are_deterministic_and_seeds_differ(tiny, tmp_path):
    a = train(tiny(), tmp_path / "a", progress=False)
    b = train(tiny(), tmp_path / "b", progress=False)
    c = train(tiny(**{"train.seed": 2}), tmp_path / "c", progress=False)
    assert a["test"] == b["test"]
    assert a["test"] != c["test"]


def test_recommender_round_trip(tiny, tmp_path):
    train(tiny(), tmp_path / "run", progress=False)
    rec = Recommender.load(tmp_path / "run")
    user = rec.data.user_ids[3]
    seq = [rec.data.item_ids[i - 1] for i in rec.data.sequence(3)]
    r = rec.recommend_user(user, k=5)
    assert len(r.items) == 5 and r.scores == sorted(r.scores, reverse=True)
    assert not set(r.items) & set(seq)  # seen items excluded
    assert 0 <= r.intent < 8
    # the same sequence given as a new user gives the same answer
    assert rec.recommend(seq, k=5).items == r.items
    unknown = rec.recommend(seq + ["no-such-item"], k=5)
    assert unknown.unknown_items == ["no-such-item"] and unknown.items == r.items
    with torch.no_grad():
        incl = rec.recommend(seq, k=5, exclude_seen=False)
    assert len(incl.items) == 5


def test_iclrec_refits_kmeans_every_epoch_and_contrasts_with_unit_centroids(tiny, tmp_path):
    from elcrec.data import Split, load
    from elcrec.models import build_model
    from elcrec.train import pooled_train_representations

    cfg = tiny(**{"model.name": "ICLRec"})
    data = load(cfg.data)
    split = Split(data, cfg.data.max_len)
    torch.manual_seed(0)
    model = build_model(data.n_items, cfg.data.max_len, cfg.model)
    assert not model.clusters.centers.requires_grad
    before = model.clusters.centers.detach().clone()
    model.on_train_start(lambda: pooled_train_representations(model, split, "cpu"), seed=3)
    assert torch.equal(model.clusters.centers, before)  # the first epoch's refit sets them
    model.on_epoch_start(lambda: pooled_train_representations(model, split, "cpu"), 3, epoch=0)
    centers = model.clusters.centers.detach().clone()
    # ICLRec keeps raw centroids: they live where the pooled representations are.
    norms = centers.norm(dim=1)
    assert not torch.allclose(norms, torch.ones_like(norms))
    x = torch.from_numpy(pooled_train_representations(model, split, "cpu"))
    nearest = torch.cdist(x, centers).argmin(dim=1)
    for j in nearest.unique():  # each used centroid is the mean of its members (k-means)
        assert torch.allclose(centers[j], x[nearest == j].mean(0), atol=1e-3)
    # A training step leaves the centers alone (no gradient, no renormalisation).
    users = np.arange(16)
    items = torch.from_numpy(split.inputs(users, "train"))
    pos = torch.from_numpy(split.train_targets(split.whole_samples(users), items.shape[1]))
    out = model(Batch(items, pos, pos, torch.cat([items, items])))
    out["total"].backward()
    assert model.clusters.centers.grad is None
    assert torch.equal(model.clusters.centers, centers)
    assert "intent_cl" in out and "cluster" not in out
    # Its intent contrast: each user goes to the nearest raw centroid, and both
    # views are pulled toward that centroid's unit vector (its authors' code).
    from elcrec.models.elcrec import info_nce

    model.eval()  # no dropout: the loss can be recomputed by hand
    with torch.no_grad():
        views = torch.cat([items, items])
        out = model(Batch(items, pos, pos, views))
        mask = (items > 0).unsqueeze(-1)
        z = (model.encoder(items) * mask).sum(1) / mask.sum(1)
        assigned = torch.cdist(z, centers).argmin(dim=1)
        pooled = torch.cat([z, z])  # the views are the sequences themselves

        def by_hand(prototypes):
            n, t, c = len(z), model.cfg.temperature, model.cfg.cl_similarity == "cosine"
            p = prototypes[assigned]
            return 0.5 * (info_nce(pooled[:n], p, t, c) + info_nce(pooled[n:], p, t, c))

        unit = centers / centers.norm(dim=1, keepdim=True)
        assert torch.allclose(out["intent_cl"], by_hand(unit), atol=1e-5)
        assert not torch.allclose(out["intent_cl"], by_hand(centers), atol=1e-3)


def test_a_folder_without_its_checkpoint_starts_clean(tiny, tmp_path):
    cfg = tiny()
    Run(cfg, tmp_path / "run").fit(progress=False, max_epochs=1)
    (tmp_path / "run" / "last.pt").unlink()  # e.g. committed without checkpoints
    train(cfg, tmp_path / "run", progress=False)
    epochs = [r["epoch"] for r in epoch_records(tmp_path / "run")]
    assert epochs == list(range(cfg.train.epochs))


@pytest.mark.parametrize("loss", ["ce", "bce"])
def test_prefix_samples_give_the_window_loss_with_positions_from_start(loss):
    """With positions counted from the start, causal attention and no dropout,
    one window per user is exactly RecBole's per-prefix samples: over the same
    targets the mean next-item loss is the same (the samples differ only in
    batching and dropout draws)."""
    from elcrec.data import Split, synthetic
    from elcrec.models.elcrec import ELCRec

    data = synthetic(60, 40, 3, seed=4)
    split = Split(data, max_len=int(data.lengths.max()))  # no window cuts a target off
    cfg = RunConfig().replace(
        **{"model.variant": "sasrec", "model.loss": loss, "model.n_layers": 2},
        **{"model.dropout": 0.0, "model.positions": "from_start"},
    )
    torch.manual_seed(0)
    model = ELCRec(data.n_items, split.max_len, cfg.model).eval()
    values = []
    for kind in ("users", "prefixes"):
        samples = split.train_samples(kind)
        users = samples.users
        items = split.train_inputs(samples)
        pos = split.train_targets(samples, items.shape[1], last_only=kind == "prefixes")
        # BCE: the same negative for the same (user, target position)
        neg = np.where(pos > 0, (pos * 7 + users[:, None]) % data.n_items + 1, 0)
        t = [torch.from_numpy(x) for x in (items, pos, neg)]
        with torch.no_grad():
            values.append(float(model(Batch(*t))["next_item"]))
    assert values[0] == pytest.approx(values[1], rel=1e-5)


def test_run_folders_of_earlier_versions_still_load_and_name_their_model(tmp_path):
    """Options that were removed, moved or implied by a switch in earlier
    versions: an old config.json loads, and means what it meant."""
    raw = RunConfig().to_dict()
    raw["train"]["log_every_epoch"] = True  # read by nothing; dropped
    raw["train"]["encoder_passes"] = 5  # now a model option
    del raw["model"]["encoder_passes"], raw["model"]["name"]
    cases = [
        ({"variant": "iclrec"}, None, ("ICLRec", "full")),
        ({"variant": "backbone"}, None, ("CL4SRec", "backbone")),
        ({"variant": "sasrec", "loss": "ce"}, None, ("SASRec-CE", "sasrec")),
        ({"variant": "full"}, "plus:beauty", ("ELCRec+", "full")),
        ({"variant": "full"}, "paper:beauty", ("ELCRec", "full")),
    ]
    for model, preset_name, (name, variant) in cases:
        old = {**raw, "model": {**raw["model"], **model}, "preset": preset_name}
        path = tmp_path / "config.json"
        path.write_text(json.dumps(old))
        cfg = RunConfig.load(path)
        assert (cfg.model.name, cfg.model.variant) == (name, variant)
        assert cfg.model.encoder_passes == 5 and not hasattr(cfg.train, "log_every_epoch")
    with pytest.raises(ConfigError, match="unknown option train.no_such_option"):
        RunConfig.from_dict({"train": {"no_such_option": 1}})


def test_every_string_option_says_what_it_allows():
    from dataclasses import fields

    from elcrec.config import DataConfig, ModelConfig, TrainConfig

    free_text = {"source", "user_col", "item_col", "time_col", "data_dir", "name"}
    for section in (DataConfig, ModelConfig, TrainConfig):
        for f in fields(section):
            if f.type in ("str", str) and f.name not in free_text:
                allowed = f.metadata.get("choices")
                assert allowed and f.default == allowed[0], f"{section.__name__}.{f.name}"
    with pytest.raises(ConfigError, match="model.loss = 'mse': expected one of bce, ce"):
        RunConfig().replace(**{"model.loss": "mse"})
    with pytest.raises(ConfigError, match="unknown model 'GRU4Rec'"):
        Run(RunConfig().replace(**{"model.name": "GRU4Rec"}), "/nonexistent/never-made")


def test_kmeans_hooks_encode_at_most_their_cap_of_users(tiny, tmp_path):
    """ELCRec's initial k-means fits on at most 256 users per center (a fixed
    sample beyond that), ICLRec's on up to 4096 per center, as its authors'."""
    from elcrec import Run

    for model, expected in (("ELCRec", 256), ("ICLRec", 300)):  # k = 1: 256 of the 300 users
        run = Run(tiny(**{"model.name": model, "model.n_clusters": 1}), tmp_path / model)
        run.setup()
        first, again = run.encode_users(), run.encode_users()
        assert first.shape == (expected, run.cfg.model.hidden)
        np.testing.assert_array_equal(first, again)  # the same sample every time


def test_validation_on_a_user_sample_is_that_sample_s_mean(tiny, tmp_path):
    from elcrec import Run
    from elcrec.evaluate import metrics_from_ranks, rank_all

    run = Run(tiny(**{"train.valid_users": 120, "train.epochs": 1}), tmp_path / "r")
    run.fit(progress=False)
    assert len(run.valid_users) == 120 and len(np.unique(run.valid_users)) == 120
    run.model.load_state_dict(torch.load(tmp_path / "r" / "last.pt")["model"])
    every = rank_all(run.model, run.split, "valid")
    record = json.loads((tmp_path / "r" / "metrics.jsonl").read_text().splitlines()[0])
    expected = metrics_from_ranks(every[run.valid_users])
    assert record["valid/NDCG@20"] == pytest.approx(expected["NDCG@20"])
    assert record["valid/NDCG@20"] != pytest.approx(metrics_from_ranks(every)["NDCG@20"])
    with pytest.raises(Exception, match="train.valid_users"):
        tiny(**{"train.valid_users": -1})


def test_learning_rate_decays_on_plateaus_then_stops_and_resumes_with_it(tiny, tmp_path):
    """train.lr_decay_patience = 2: every second epoch in a row without a
    better validation NDCG@20 multiplies the rate by lr_decay_factor (an
    improvement restarts the count), lr_decays times; the next plateau ends
    the run.  A run resumed in pieces carries rate and count on."""
    cfg = tiny(
        **{
            "train.epochs": 30,
            "train.lr": 0.05,  # large enough to wander: plateaus early
            "train.lr_decay_patience": 2,
            "train.lr_decay_factor": 0.5,
            "train.lr_decays": 1,
        }
    )
    train(cfg, tmp_path / "whole", progress=False)
    records = epoch_records(tmp_path / "whole")
    best, bad, lr, decays, stop = -1.0, 0, 0.05, 0, None
    for r in records:
        assert stop is None, "trained past the plateau after the last decay"
        if r["valid/NDCG@20"] > best:
            best, bad = r["valid/NDCG@20"], 0
        else:
            bad += 1
            if bad % 2 == 0 and decays == 1:
                stop = r["epoch"]
            elif bad % 2 == 0:
                lr, decays = lr * 0.5, decays + 1
        assert r["lr"] == pytest.approx(lr)
    assert decays == 1 and stop is not None and stop < 29
    run = Run(cfg, tmp_path / "pieces")
    assert run.fit(progress=False, max_epochs=3)["unfinished"]
    Run(cfg, tmp_path / "pieces").fit(progress=False)
    pieces = epoch_records(tmp_path / "pieces")
    assert len(pieces) == len(records)
    for a, b in zip(records, pieces):
        assert a == pytest.approx(b, rel=1e-4)


def test_auto_precision_takes_bf16_only_where_the_processor_has_it(
    tiny, tmp_path, monkeypatch, capsys
):
    """bf16 without bf16 units is emulated (about 11x slower per step on an
    AVX2 CPU), so `auto` (the fast and plus presets') runs those in fp32."""
    train_mod = importlib.import_module("elcrec.train")  # (the package's `train` is the function)

    cpu = torch.device("cpu")
    for native, auto in ((True, "bf16"), (False, "fp32")):
        monkeypatch.setattr(train_mod, "native_bf16", lambda device, n=native: n)
        assert train_mod.resolve_precision("auto", cpu) == auto
        assert train_mod.resolve_precision("fp32", cpu) == "fp32"
        assert train_mod.resolve_precision("bf16", cpu) == "bf16"  # asked for: kept
        warned = "emulated" in capsys.readouterr().err
        assert warned is not native  # ... with a warning where it is slow
    # the run records what it took; the config keeps what was asked
    cfg = tiny().replace(**{"train.epochs": 1, "train.precision": "auto"})
    result = train(cfg, tmp_path / "run", progress=False)
    assert result["precision"] == "fp32"
    assert RunConfig.load(tmp_path / "run" / "config.json").train.precision == "auto"
    assert train_mod.native_bf16(cpu) in (True, False)  # the real check runs here
