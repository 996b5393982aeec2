"""`elcrec tune` (validation-only search), the `plus` preset, the beyond table."""

import json
from pathlib import Path

import pytest

from elcrec import benchmark, cli, models, tune
from elcrec.config import (
    BEFORE_PREFIX_SPEEDUPS,
    BEFORE_SPEEDUPS,
    PLUS_SEARCHES,
    PLUS_SETTINGS,
    PREFIX_SPEEDUPS,
    SPEEDUPS,
    ConfigError,
    RunConfig,
    preset,
)
from elcrec.models import configure
from elcrec.paper import METRICS, TABLE1
from tests.test_benchmark import PLACE
from tests.test_benchmark import TINY as CELL

# The grid tests' tiny synthetic data; k and the epochs come from each trial.
TINY = {k: v for k, v in CELL.items() if k not in ("model.n_clusters", "train.epochs")} | PLACE
SMALL_SPACE = {"model.n_clusters": [2, 4], "model.alpha": [0.0, 0.1], "model.loss": ["bce", "ce"]}
ROOT = Path(__file__).resolve().parents[1]


def test_trials_are_reproducible_draws_from_the_space_and_trial_0_is_the_start():
    assert tune.trial_options(0) == tune.START
    draws = [tune.trial_options(i, seed=3) for i in range(1, 30)]
    assert draws == [tune.trial_options(i, seed=3) for i in range(1, 30)]
    assert draws != [tune.trial_options(i, seed=4) for i in range(1, 30)]
    for options in draws:
        assert set(options) == set(tune.SPACE)
        assert all(options[k] in tune.SPACE[k] for k in options)
    # Every value of every option is reachable.
    for key, values in tune.SPACE.items():
        assert {d[key] for d in draws} == set(values)


def test_tune_runs_trials_without_the_test_set_then_chooses_on_validation(tmp_path):
    base = preset("fast", "beauty").replace(**TINY)
    search = {"space": SMALL_SPACE, "start": {}, "fixed": {"model.dropout": 0.2}}
    counts = tune.run_tune(
        base, tmp_path, trials=3, epochs=2, patience=2, search=search, log=lambda *_: None
    )
    assert counts == {"finished": 3, "interrupted": 0, "failed": 0, "pruned": 0}
    for i in range(3):
        cfg = RunConfig.load(tmp_path / f"trial{i}" / "config.json")
        assert cfg.train.evaluate_test is False and cfg.model.variant == "full"
        assert cfg.model.n_layers == 2 and cfg.model.dropout == 0.2
        result = json.loads((tmp_path / f"trial{i}" / "test_metrics.json").read_text())
        assert result["test"] is None and result["test_by_history_mask"] == {}
    stale = "# Tuning an old title\n\nCommand: `elcrec tune --trials 3`"
    payload = tune.write_results(tmp_path, stale, {"trials": 3})
    rows = tune.summarize(tmp_path)
    curves = [
        [json.loads(line) for line in (tmp_path / f"trial{i}" / "metrics.jsonl").open()]
        for i in range(3)
    ]
    best_valid = [max(r["valid/NDCG@20"] for r in curve) for curve in curves]
    assert [r["valid_NDCG@20"] for r in rows] == [round(v, 5) for v in best_valid]
    assert payload["best_trial"] == max(range(3), key=best_valid.__getitem__)
    chosen = tune.trial_options(payload["best_trial"], 0, SMALL_SPACE, {})
    assert payload["options"] == {"model.dropout": 0.2, **chosen}
    assert (tmp_path / "tune.csv").exists() and (tmp_path / "tune.md").exists()
    # The command line rewrites the tables from the folders, same choice; it
    # keeps the search's command and rebuilds the title from what was searched.
    assert cli.main(["tune", "--out", str(tmp_path), "--tables-only"]) == 0
    again_best = json.loads((tmp_path / "best.json").read_text())
    assert again_best["options"] == payload["options"]
    title = f"# Tuning ELCRec+ on {base.data.source} (validation only)"
    assert again_best["header"] == f"{title}\n\nCommand: `elcrec tune --trials 3`"
    assert again_best["budget"] == {"trials": 3}
    # A second call skips the finished trials.
    again = tune.run_tune(base, tmp_path, 3, 2, 2, search=search, log=lambda *_: None)
    assert again["finished"] == 3


def test_a_search_file_may_not_fix_and_search_one_option(tmp_path):
    path = tmp_path / "search.json"
    path.write_text(json.dumps({"space": {"model.alpha": [0, 1]}, "fixed": {"model.alpha": 1}}))
    with pytest.raises(ConfigError, match="model.alpha"):
        tune.load_search(path)
    path.write_text(json.dumps({"space": {"model.alpha": [0.0, 1.0]}}))
    assert tune.load_search(path) == {
        "space": {"model.alpha": [0.0, 1.0]},
        "start": {},
        "fixed": {},
    }


def _trial(out: Path, i: int, curve: list[float], finished: bool = False) -> Path:
    folder = out / f"trial{i}"
    folder.mkdir(parents=True)
    lines = [json.dumps({"epoch": e, "valid/NDCG@20": v}) for e, v in enumerate(curve)]
    (folder / "metrics.jsonl").write_text("".join(line + "\n" for line in lines))
    if finished:
        (folder / "test_metrics.json").write_text("{}")
    return folder


def test_median_pruner_on_hand_made_curves(tmp_path):
    _trial(tmp_path, 0, [0.010, 0.030, 0.020], finished=True)  # early-stopped after 3
    slow = _trial(tmp_path, 1, [0.005, 0.006])
    fast = _trial(tmp_path, 2, [0.020])
    rule = tune.median_pruner(tmp_path, warmup=2)
    # Before its warm-up a trial is never stopped.
    assert rule(fast) is None
    # slow over 2 epochs: 0.006; the others that ran 2 epochs or finished:
    # trial 0 only (0.030 over 2 epochs); trial 2 ran 1 epoch and is left out.
    assert "0.00600 in its first 2 epoch(s), below the median 0.03000 of 1 other" in rule(slow)
    # Over 1 epoch (warm-up 1): fast 0.020 against trial 0's 0.010 and
    # trial 1's 0.005 (median 0.0075): it goes on.
    assert tune.median_pruner(tmp_path, warmup=1)(fast) is None
    # Best so far, not the last epoch: trial 3 fell back to 0.001, but its
    # best over 4 epochs (0.040) is above trial 0's final best (0.030,
    # finished sooner), the only other trial that counts over 4 epochs.
    dip = _trial(tmp_path, 3, [0.040, 0.001, 0.001, 0.001])
    assert rule(dip) is None
    # Median of three: trial 4 over 1 epoch (0.006) against 0.010, 0.005,
    # 0.040 (trial 2's 0.020 makes four: median (0.010 + 0.020) / 2 = 0.015).
    low = _trial(tmp_path, 4, [0.006])
    assert "below the median 0.01500 of 4 other" in tune.median_pruner(tmp_path, 1)(low)
    # A line still being written is not an epoch.
    with (slow / "metrics.jsonl").open("a") as f:
        f.write('{"epoch": 2, "valid/ND')
    assert tune.validation_curve(slow) == [0.005, 0.006]


def test_a_pruned_trial_is_stopped_skipped_after_and_not_chosen(tmp_path):
    base = preset("fast", "beauty").replace(**TINY)
    space = {"train.lr": [0.001, 1e-9]}  # trial 0: 0.001; a trial at 1e-9 learns nothing
    seed = next(s for s in range(50) if tune.trial_options(1, s, space, {})["train.lr"] < 1e-6)
    search = {"space": space, "start": {}, "fixed": {"model.n_clusters": 4}}
    args = dict(search_seed=seed, search=search, log=lambda *_: None, prune_after=2)
    counts = tune.run_tune(base, tmp_path, trials=2, epochs=16, patience=16, **args)
    assert counts == {"finished": 1, "interrupted": 0, "failed": 0, "pruned": 1}
    rows = tune.summarize(tmp_path)
    assert [(r["finished"], r["pruned"]) for r in rows] == [(True, False), (False, True)]
    assert rows[1]["epochs_run"] < 16 and rows[1]["valid_NDCG@20"] < rows[0]["valid_NDCG@20"]
    assert "below the median" in (tmp_path / "trial1" / benchmark.PRUNED).read_text()
    payload = tune.write_results(tmp_path, "# t\n\nCommand: `x`", {"trials": 2})
    assert payload["best_trial"] == 0
    # Run again: nothing runs, the pruned trial is counted as such.
    again = tune.run_tune(base, tmp_path, trials=2, epochs=16, patience=16, **args)
    assert again == {"finished": 1, "interrupted": 0, "failed": 0, "pruned": 1}


def test_choose_ignores_unfinished_trials():
    rows = [
        {"trial": 0, "finished": True, "valid_NDCG@20": 0.05},
        {"trial": 1, "finished": False, "valid_NDCG@20": 0.09},
        {"trial": 2, "finished": True, "valid_NDCG@20": 0.06},
        {"trial": 3, "finished": True, "valid_NDCG@20": ""},
    ]
    assert tune.choose(rows)["trial"] == 2
    assert tune.choose([]) is None


def test_plus_preset_holds_the_committed_choice_of_the_search():
    for dataset, options in PLUS_SETTINGS.items():
        best = ROOT / "benchmarks" / "tune" / PLUS_SEARCHES[dataset] / "best.json"
        if not best.exists():  # the preset cites a search that is not committed
            pytest.fail(f"PLUS_SETTINGS[{dataset!r}] has no committed search at {best}")
        chosen = json.loads(best.read_text())["options"]
        assert options == chosen
        cfg = preset("plus", dataset)
        assert cfg.train.evaluate_test is True and cfg.model.n_layers == 2
        # the speed-ups estimate the chosen full softmax by a sampled one
        assert options["model.loss"] == "ce" and cfg.model.loss == "sampled_softmax"
        options = {k: v for k, v in options.items() if k not in PREFIX_SPEEDUPS}
        assert preset("plus-v1", dataset).model.loss == "ce"
        for key, value in options.items():
            section, name = key.split(".")
            assert getattr(getattr(cfg, section), name) == value


def test_elcrec_plus_exists_under_the_plus_preset_only():
    cell = benchmark.Cell("ELCRec+", "beauty", 1)
    if PLUS_SETTINGS:
        assert cell.config("plus", {}).model.variant == "full"
    with pytest.raises(ConfigError, match="--preset plus"):
        cell.config("fast", {})


def test_fast_and_plus_train_with_the_speedups_and_their_v1_as_before():
    """`fast`/`plus` take the bfloat16 step, the fused kernels and (for the
    per-prefix softmax models) the plateau schedule; `fast-v1`/`plus-v1` are
    the earlier presets, option for option."""
    for name, model in (("fast", "SASRec-CE"), ("plus", "ELCRec+")):
        new = configure(preset(name, "toys"), model, name)
        old = configure(preset(f"{name}-v1", "toys"), model, f"{name}-v1")
        for key, value in {**SPEEDUPS, **PREFIX_SPEEDUPS}.items():
            section, field = key.split(".")
            assert getattr(getattr(new, section), field) == value, key
        differ = {
            f"{s}.{k}"
            for s in ("data", "model", "train")
            for k, v in vars(getattr(new, s)).items()
            if getattr(getattr(old, s), k) != v
        }
        before = {**BEFORE_SPEEDUPS, **BEFORE_PREFIX_SPEEDUPS}
        assert differ == set(before)  # (lr_decays counts only when the rate decays)
        assert old.preset == f"{name}-v1:toys"
        for key, value in before.items():
            section, field = key.split(".")
            assert getattr(getattr(old, section), field) == value
    # the BCE models under fast keep their loss and a constant rate (only the
    # step is faster), under fast-v1 their step as before
    bce = configure(preset("fast", "beauty"), "ELCRec", "fast")
    assert bce.train.lr_decay_patience == 0 and bce.model.loss == "bce"
    assert bce.model.kernels == "fused" and bce.train.precision == "auto"
    bce = configure(preset("fast-v1", "beauty"), "ELCRec", "fast-v1")
    assert bce.model.loss == "bce" and bce.model.kernels == "torch"


def test_bsarec_takes_each_benchmarks_own_settings_and_beautys_elsewhere():
    """The registry's per-dataset options: BSARec's alpha, c, heads and rate
    change with the benchmark; a user's file gets the Beauty settings."""
    got = {
        data: configure(preset("fast", data), "BSARec", "fast")
        for data in ("beauty", "sports", "toys", "yelp", "my_log.csv")
    }
    settings = {
        data: (c.model.filter_alpha, c.model.filter_c, c.model.n_heads, c.train.lr)
        for data, c in got.items()
    }
    assert settings == {
        "beauty": (0.7, 5, 1, 5e-4),
        "sports": (0.3, 5, 4, 1e-3),
        "toys": (0.7, 3, 1, 1e-3),
        "yelp": (0.7, 3, 4, 1e-3),
        "my_log.csv": (0.7, 5, 1, 5e-4),
    }
    for c in got.values():  # what every dataset shares
        assert (c.model.encoder, c.model.n_layers, c.model.dropout) == ("bsarec", 2, 0.5)
        assert (c.train.batch_size, c.train.patience) == (256, 10)


def test_the_committed_v1_cells_are_what_the_v1_presets_run():
    """Every cell under benchmarks/grid/{fast,plus}-v1 has the config its
    preset gives now (so `elcrec benchmark --preset fast-v1` repeats them);
    model.n_negatives, read by the sampled softmax only, had another default
    when the softmax cells ran."""
    grid = ROOT / "benchmarks" / "grid"
    # ... and so do the reruns kept beside them for their per-user ranks
    cells = sorted(grid.glob("*-v1/*/*/seed*/config.json"))
    cells += sorted(grid.glob("reruns/*-v1/*/*/seed*/config.json"))
    assert cells
    for path in cells:
        name, dataset, model = path.parts[-5], path.parts[-4], path.parts[-3]
        seed = int(path.parts[-2].removeprefix("seed"))
        have = RunConfig.load(path).identity()
        want = benchmark.Cell(model, dataset, seed).config(name, {}).identity()
        assert have["model"]["loss"] == "ce"
        have["model"].pop("n_negatives"), want["model"].pop("n_negatives")
        assert have == want, path


def test_beyond_table_arithmetic_on_hand_made_runs(tmp_path):
    values = {("plus", "ELCRec+"): [0.06, 0.08], ("fast", "SASRec-CE"): [0.05]}
    for (preset_name, model), per_seed in values.items():
        for seed, v in enumerate(per_seed, start=1):
            d = tmp_path / preset_name / "beauty" / model / f"seed{seed}"
            d.mkdir(parents=True)
            result = {
                "test": {m: v for m in METRICS},
                "seed": seed,
                "best_epoch": 3,
                "epochs_run": 5,
                "wall_s": 1.0,
            }
            if model == "ELCRec+":
                result["intents"] = {"largest_share": 0.1 * seed, "effective_intents": 10.0}
            (d / "test_metrics.json").write_text(json.dumps(result))
    # A SASRec-CE cell under another preset is not part of the table.
    other = tmp_path / "paper" / "beauty" / "SASRec-CE" / "seed1"
    other.mkdir(parents=True)
    (other / "test_metrics.json").write_text((d / "test_metrics.json").read_text())
    rows = benchmark.write_beyond(tmp_path, tmp_path)
    by = {(r["model"], r["metric"]): r for r in rows}
    assert len(rows) == 2 * len(METRICS)
    for m in METRICS:
        plus = by[("ELCRec+", m)]
        assert plus["mean"] == pytest.approx(0.07) and plus["n_seeds"] == 2
        assert plus["std"] == pytest.approx(0.01414, abs=1e-5)
        paper = TABLE1["Beauty"]["ELCRec"][METRICS.index(m)]
        assert plus["paper_elcrec"] == paper
        assert plus["vs_paper_elcrec"] == pytest.approx(0.07 / paper - 1, abs=1e-4)
        assert plus["largest_share"] == pytest.approx(0.15)
        assert by[("SASRec-CE", m)]["n_seeds"] == 1
        assert by[("SASRec-CE", m)]["largest_share"] == ""
    header = (tmp_path / "beyond.csv").read_text().splitlines()[0].split(",")
    assert header[:6] == ["model", "dataset", "metric", "mean", "std", "n_seeds"]
    md = (tmp_path / "beyond.md").read_text()
    # The header names the command for every column, whichever run wrote it.
    for command in benchmark.beyond_commands():
        assert command in md
    # No ELCRec (paper preset) or BSARec cell ran: their columns say so, and
    # how to fill them.
    rows = tuple(f"| Beauty | {m} |" for m in METRICS)
    table = [line for line in md.splitlines() if line.startswith(rows)]
    assert len(table) == len(METRICS)
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        ran = dict(zip(benchmark.BEYOND_MODELS, cells[3:], strict=True))
        assert {m for m, c in ran.items() if c != "—"} == {"SASRec-CE", "ELCRec+"}
    assert "ELCRec `--preset paper`" in md and "BSARec `--preset fast`" in md
    assert md.startswith("# Beyond the paper: ELCRec, SASRec-CE, ELCRec+, BSARec and BSARec+ELCM")
    assert "†" not in md.split("Each column")[0]  # every cell of the current presets

    # Cells of an earlier preset version stand in on a dataset the current
    # preset has not run (marked), never beside the current preset's own.
    for dataset in ("beauty", "toys"):
        d = tmp_path / "fast-v1" / dataset / "SASRec-CE" / "seed1"
        d.mkdir(parents=True)
        (d / "test_metrics.json").write_text((other / "test_metrics.json").read_text())
    rows = benchmark.write_beyond(tmp_path, tmp_path)
    sasrec = {(r["dataset"], r["preset"]) for r in rows if r["model"] == "SASRec-CE"}
    assert sasrec == {("Beauty", "fast"), ("Toys_and_Games", "fast-v1")}
    md = (tmp_path / "beyond.md").read_text()
    assert md.split("Each column")[0].count("†") == len(METRICS)


def test_the_search_elcrec_tune_runs_on_own_data_is_the_one_behind_the_plus_preset():
    root = Path(__file__).resolve().parents[1] / "benchmarks" / "tune"
    committed = json.loads((root / "spaces" / "prefixes_stage1.json").read_text())
    assert {k: committed[k] for k in ("space", "start", "fixed")} == tune.PLUS_SEARCH
    # ... and that search chose what the plus preset holds
    best = json.loads((root / PLUS_SEARCHES["beauty"] / "best.json").read_text())
    assert best["options"] == PLUS_SETTINGS["beauty"]


def _option(cfg: RunConfig, dotted: str):
    section, key = dotted.split(".")
    return getattr(getattr(cfg, section), key)


@pytest.mark.parametrize(
    "space", sorted(p.name for p in (ROOT / "benchmarks" / "tune" / "spaces").glob("*.json"))
)
def test_every_committed_search_builds_valid_trials(space):
    # A search file is run hours later, often on a lent machine: a clash with
    # the search's own budget options or an invalid combination must show here.
    search = tune.load_search(ROOT / "benchmarks" / "tune" / "spaces" / space)
    base = preset("fast", "beauty")
    for i in range(8):
        options = tune.trial_options(i, 0, search["space"], search["start"])
        cfg = tune.trial_config(base, options, 4, 2, 1, search["fixed"]).validate()
        taken = {**search["fixed"], **options}
        assert {k: _option(cfg, k) for k in taken} == taken
        assert not cfg.train.evaluate_test


def _flat(cfg: RunConfig) -> dict:
    return {
        f"{s}.{k}": v for s in ("data", "model", "train") for k, v in vars(getattr(cfg, s)).items()
    }


def test_bsarec_alone_is_the_intent_searchs_encoder_under_its_budget():
    """The reference a BSARec intent trial must beat differs from every trial
    only in the intent options, and is the registry's BSARec (the one that
    reproduced its paper) but for the search's budget."""
    spaces, base = ROOT / "benchmarks" / "tune" / "spaces", preset("fast", "beauty")

    def trials(name, n):
        search = tune.load_search(spaces / name)
        for i in range(n):
            options = tune.trial_options(i, 0, search["space"], search["start"])
            yield search, _flat(tune.trial_config(base, options, 16, 3, 1, search["fixed"]))

    ((_, alone),) = trials("bsarec_alone.json", 1)
    for search, trial in trials("bsarec_intents.json", 6):
        differ = {k for k in alone if alone[k] != trial[k]}
        assert {"model.name", "model.variant"} <= differ
        assert differ <= set(search["space"]) | {"model.name", "model.variant"}
    # the view-free intents also pool the last output (the encoder's query)
    for search, trial in trials("bsarec_intents_noviews.json", 6):
        differ = {k for k in alone if alone[k] != trial[k]}
        assert trial["model.variant"] == "intents" and trial["model.pooling"] == "last"
        assert differ <= set(search["space"]) | {"model.name", "model.variant", "model.pooling"}
    reproduced = _flat(configure(base, "BSARec"))
    differ = {k for k in alone if alone[k] != reproduced[k]}
    budget = {"train.epochs", "train.patience", "train.evaluate_test"}
    unread = {"model.cl_similarity", "model.n_negatives"}  # no contrast; full softmax
    assert budget <= differ <= budget | unread


def test_bsarec_elcm_is_what_the_view_free_search_chose():
    """The registry's BSARec+ELCM is the view-free search's best trial, but for
    the search's budget, and differs from BSARec only in the intent options."""
    out = ROOT / "benchmarks" / "tune" / models.BSAREC_ELCM_SEARCH
    search = tune.load_search(out / "search.json")
    best = json.loads((out / "best.json").read_text())
    assert models.BSAREC_ELCM_CHOICE == {k: best["options"][k] for k in search["space"]}
    base = preset("fast", "beauty")
    chosen = _flat(tune.trial_config(base, best["options"], 16, 3, 1, search["fixed"]))
    registered = _flat(configure(base, "BSARec+ELCM"))
    differ = {k for k in chosen if chosen[k] != registered[k]}
    budget = {"train.epochs", "train.patience", "train.evaluate_test", "model.name"}
    assert differ <= budget | {"model.n_negatives"}  # unread under the full softmax
    assert registered["model.loss"] == "ce"
    encoder = _flat(configure(base, "BSARec"))
    differ = {k for k in encoder if encoder[k] != registered[k]}
    assert differ == {"model.name", "model.variant", "model.pooling"} | {
        k for k in search["space"] if encoder[k] != registered[k]
    }
    # the other benchmarks: BSARec's own per-dataset settings under the same intents
    sports = _flat(configure(preset("fast", "sports"), "BSARec+ELCM"))
    assert sports["model.filter_alpha"] == 0.3 and sports["model.variant"] == "intents"


def test_yelps_bsarec_search_starts_at_the_registrys_bsarec_on_yelp():
    """Trial 0 of the Yelp search is the reproduced BSARec with Yelp's own
    settings, so it is the reference the other trials (BCE among them) must
    beat; they differ from it only in what the space searches."""
    search = tune.load_search(ROOT / "benchmarks" / "tune" / "spaces" / "bsarec_yelp.json")
    base = preset("fast", "yelp")
    trials = [
        _flat(
            tune.trial_config(
                base,
                tune.trial_options(i, 0, search["space"], search["start"]),
                16,
                3,
                1,
                search["fixed"],
            )
        )
        for i in range(6)
    ]
    reproduced = _flat(configure(base, "BSARec"))
    differ = {k for k in reproduced if reproduced[k] != trials[0][k]}
    budget = {"train.epochs", "train.patience", "train.evaluate_test"}
    unread = {"model.cl_similarity", "model.n_negatives"}  # no contrast; full softmax
    assert budget <= differ <= budget | unread
    assert {t["model.loss"] for t in trials} == {"ce", "bce"}
    for t in trials[1:]:
        assert {k for k in t if t[k] != trials[0][k]} <= set(search["space"]) | unread


@pytest.mark.parametrize("name", ["paper", "fast", "plus"])
def test_presets_work_on_any_data_and_say_where_their_options_came_from(tmp_path, name):
    import pandas as pd

    from elcrec.data import load, synthetic

    path = tmp_path / "Clicks.parquet"  # the case of a path is kept
    synthetic(300, 100, 3, seed=2).to_log(tmp_path / "clicks.csv")
    pd.read_csv(tmp_path / "clicks.csv").to_parquet(path)
    cfg = preset(name, str(path))
    assert cfg.data.source == str(path) and load(cfg.data).n_users == 300
    beauty = preset(name, "beauty")
    differ = {
        (section, key)
        for section in ("model", "train")
        for key, value in cfg.to_dict()[section].items()
        if beauty.to_dict()[section][key] != value
    }
    assert differ == set()  # Beauty's options ...
    assert "not one of the benchmarks, so it takes Beauty's" in cfg.origin  # ... and it says so
    assert "not one of" not in beauty.origin
    with pytest.raises(ConfigError, match="unknown preset 'best'"):
        preset("best", str(path))


def test_a_searchs_title_names_the_model_and_encoder_its_fixed_options_set():
    assert tune.searched_model(tune.load_search(None)) == "ELCRec+"
    spaces = Path(__file__).parents[1] / "benchmarks/tune/spaces"
    assert tune.searched_model(tune.load_search(spaces / "bsarec_yelp.json")) == "BSARec"
    intents = tune.load_search(spaces / "bsarec_intents.json")
    assert tune.searched_model(intents) == "ELCRec+ on the bsarec encoder"
