"""The benchmark grid: cells run, skip, stop at a deadline, resume; table arithmetic."""

import csv
import json
import math
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import numpy as np
import pytest

from elcrec import benchmark
from elcrec.paper import ABLATION, METRICS, TABLE1
from elcrec.runs import RunFolder
from tests.helpers import script

# Tiny cells: a benchmark preset with the data swapped for small synthetic data.
TINY = {
    "data.source": "synthetic",
    "data.synthetic_users": 200,
    "data.synthetic_items": 150,
    "data.synthetic_intents": 4,
    "data.max_len": 20,
    "model.n_clusters": 4,
    "train.batch_size": 64,
    "train.epochs": 2,
    "train.eval_batch_size": 128,
}
PLACE = {"train.device": "cpu", "train.threads": 1}


def test_grid_runs_cells_in_parallel_skips_finished_ones_and_writes_tables(tmp_path):
    cells = benchmark.grid(["SASRec", "ELCRec"], ["beauty"], [1, 2])
    counts = benchmark.run_grid(
        cells, tmp_path / "work", "paper", TINY, jobs=2, placement=PLACE, log=lambda *_: None
    )
    assert counts == {"finished": 4, "interrupted": 0, "failed": 0, "pruned": 0}
    runs = [c.directory(tmp_path / "work", "paper") for c in cells]
    stamps = [(r / "test_metrics.json").stat().st_mtime_ns for r in runs]
    again = benchmark.run_grid(cells, tmp_path / "work", "paper", TINY, placement=PLACE)
    assert again["finished"] == 4
    assert [(r / "test_metrics.json").stat().st_mtime_ns for r in runs] == stamps

    benchmark.write_tables(tmp_path / "work", tmp_path / "res", "paper", "# test")
    with open(tmp_path / "res" / "table1.csv") as f:
        table = list(csv.DictReader(f))
    assert list(table[0])[:7] == ["model", "dataset", "metric", "mean", "std", "n_seeds", "paper"]
    assert {(r["model"], r["metric"]) for r in table} == {
        (m, k) for m in ("SASRec", "ELCRec") for k in METRICS
    }
    for row in table:
        seeds = [
            json.loads((r / "test_metrics.json").read_text())["test"][row["metric"]]
            for r in runs
            if r.parts[-2] == row["model"]
        ]
        assert row["dataset"] == "Beauty" and int(row["n_seeds"]) == 2
        assert float(row["mean"]) == pytest.approx(statistics.mean(seeds), abs=1e-5)
        assert float(row["std"]) == pytest.approx(statistics.stdev(seeds), abs=1e-5)
        paper = TABLE1["Beauty"][row["model"]][METRICS.index(row["metric"])]
        assert float(row["paper"]) == paper
    assert (tmp_path / "res" / "table1.md").read_text().startswith("# test")


def test_finished_cells_leave_summaries_that_suffice_without_their_run_folders(tmp_path):
    """The committed part of a cell is its summary: a clone without the work
    folder skips finished cells and rebuilds every table from summaries."""
    from elcrec.runs import SUMMARY_FILES

    cells = benchmark.grid(["ELCRec"], ["beauty"], [1])
    work, summaries = tmp_path / "work", tmp_path / "summaries"
    counts = benchmark.run_grid(
        cells, work, "paper", TINY, placement=PLACE, log=lambda *_: None, summaries=summaries
    )
    assert counts["finished"] == 1
    kept = cells[0].directory(summaries, "paper")
    assert sorted(p.name for p in kept.iterdir()) == sorted(SUMMARY_FILES)
    result = json.loads((kept / "test_metrics.json").read_text())
    curve = [json.loads(x) for x in (cells[0].directory(work, "paper") / "metrics.jsonl").open()]
    best = curve[result["best_epoch"]]
    assert result["best_valid"] == {k[6:]: v for k, v in best.items() if k.startswith("valid/")}
    upto = curve[: result["best_epoch"] + 1]
    assert result["time_to_best_s"] == pytest.approx(sum(r["train_s"] + r["eval_s"] for r in upto))
    table = benchmark.write_tables(summaries, tmp_path / "a", "paper", "# a")["table1"]
    shutil.rmtree(work)  # a fresh clone: summaries only
    again = benchmark.run_grid(
        cells, work, "paper", TINY, placement=PLACE, log=lambda *_: None, summaries=summaries
    )
    assert again["finished"] == 1 and not work.exists()  # nothing ran
    assert benchmark.write_tables(summaries, tmp_path / "b", "paper", "# b")["table1"] == table


def test_deadline_interrupts_a_cell_which_then_resumes_where_it_stopped(tmp_path):
    cells = benchmark.grid(["CL4SRec"], ["beauty"], [1])
    slow = {**TINY, "train.epochs": 400, "train.patience": 400}
    counts = benchmark.run_grid(
        cells, tmp_path, "paper", slow, deadline_s=8, placement=PLACE, log=lambda *_: None
    )
    assert counts["interrupted"] == 1 and counts["finished"] == 0
    run = cells[0].directory(tmp_path, "paper")
    assert not (run / "test_metrics.json").exists()
    assert (run / "last.pt").exists()
    done = len((run / "metrics.jsonl").read_text().splitlines())
    assert done >= 1
    # Resuming needs the same computation: another config is refused.
    with pytest.raises(Exception, match="another config"):
        benchmark.run_grid(cells, tmp_path, "paper", {**slow, "train.lr": 0.01}, placement=PLACE)
    short = {**slow, "train.epochs": done + 1}
    with pytest.raises(Exception, match="another config"):
        benchmark.run_grid(cells, tmp_path, "paper", short, placement=PLACE)


def test_an_interrupted_grid_keeps_the_summaries_of_the_cells_that_finished(tmp_path):
    cells = benchmark.grid(["SASRec"], ["beauty"], [1, 2])
    work, summaries = tmp_path / "work", tmp_path / "summaries"

    def interrupt_at_the_second_cell(message):
        if message.startswith("started") and message.endswith("seed 2"):
            raise KeyboardInterrupt  # Ctrl-C, or the SIGTERM the command turns into one

    with pytest.raises(KeyboardInterrupt):
        benchmark.run_grid(
            cells,
            work,
            "paper",
            TINY,
            placement=PLACE,
            log=interrupt_at_the_second_cell,
            summaries=summaries,
        )
    assert RunFolder(cells[0].directory(summaries, "paper")).finished()
    assert not cells[1].directory(summaries, "paper").exists()


def test_table_and_ablation_arithmetic_on_hand_made_rows():
    def row(model, seed, values):
        return {"model": model, "dataset": "Beauty", "seed": seed, **dict(zip(METRICS, values))}

    rows = [
        row("CL4SRec", 1, (0.04, 0.10, 0.03, 0.05)),
        row("CL4SRec", 2, (0.06, 0.12, 0.05, 0.07)),
        row("ELCRec", 1, (0.05, 0.11, 0.04, 0.06)),
    ]
    t1 = {(r["model"], r["metric"]): r for r in benchmark.table1(rows)}
    assert t1["CL4SRec", "HR@5"]["mean"] == pytest.approx(0.05)
    assert t1["CL4SRec", "HR@5"]["std"] == pytest.approx(
        math.sqrt(2) * 0.01, abs=1e-5
    )  # sample std
    assert t1["ELCRec", "HR@5"]["std"] == 0.0 and t1["ELCRec", "HR@5"]["n_seeds"] == 1
    assert t1["ELCRec", "NDCG@20"]["rel_diff"] == pytest.approx(0.06 / 0.0509 - 1, abs=1e-4)
    ab = {r["variant"]: r for r in benchmark.ablation(rows)}
    assert set(ab) == {"B", "ELCRec"}  # only what was run
    assert ab["B"]["sum_mean"] == pytest.approx((0.22 + 0.30) / 2, abs=1e-5)
    assert ab["B"]["paper"] == ABLATION["Beauty"]["B"]


def test_published_numbers_match_the_reference_file():
    path = Path(os.environ.get("ELCREC_REFERENCE_DIR", "/nonexistent")) / "paper_table1.csv"
    if not path.exists():
        pytest.skip("paper_table1.csv not available (set ELCREC_REFERENCE_DIR)")
    with open(path) as f:
        for line in csv.DictReader(f):
            for model, values in TABLE1[line["dataset"]].items():
                assert float(line[model]) == values[METRICS.index(line["metric"])]


def test_unknown_model_is_a_clear_error():
    with pytest.raises(Exception, match="unknown model 'GRU4Rec'"):
        benchmark.Cell("GRU4Rec", "beauty", 1).config("paper", {})


def test_compare_runs_lists_the_options_that_differ_and_each_runs_result(tmp_path, tiny):
    """benchmarks/compare_runs.py on two tiny runs: one window per user and
    RecBole's per-prefix samples (which also trains end to end here)."""
    import subprocess
    import sys

    from elcrec import train

    runs = {}
    # "trial" runs as a search trial does: it never evaluates the test set
    cases = [("users", "users", True), ("prefixes", "prefixes", True), ("trial", "prefixes", False)]
    for label, samples, test in cases:
        cfg = tiny(**{"train.samples": samples, "model.positions": "from_start"})
        train(cfg.replace(**{"train.evaluate_test": test}), tmp_path / label, progress=False)
        runs[label] = tmp_path / label
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "compare_runs.py"
    args = [f"{label}={folder}" for label, folder in runs.items()]
    out = tmp_path / "tables"
    cmd = [sys.executable, str(script), "--tag", "t", "--title", "T", "--out", str(out), *args]
    subprocess.run(cmd, check=True, capture_output=True)
    payload = json.loads((out / "t.json").read_text())
    assert payload["options_that_differ"] == {
        "users": {"train.evaluate_test": True, "train.samples": "users"},
        "prefixes": {"train.evaluate_test": True, "train.samples": "prefixes"},
        "trial": {"train.evaluate_test": False, "train.samples": "prefixes"},
    }
    assert payload["runs"]["trial"]["test"] is None
    assert "| trial | False | prefixes | 2 |" in (out / "t.md").read_text()
    assert "(no test) |" in (out / "t.md").read_text()
    del runs["trial"]
    for label, folder in runs.items():
        run = payload["runs"][label]
        expected = json.loads((folder / "test_metrics.json").read_text())["test"]
        assert run["epochs_run"] == 2 and run["finished"]
        assert run["test"] == {m: round(expected[m], 4) for m in METRICS}
    assert "| prefixes | True | prefixes |" in (out / "t.md").read_text()
    bad = subprocess.run([*cmd[:-2], "no-equals-sign"], capture_output=True, text=True)
    assert bad.returncode == 2 and "LABEL=RUN_DIR" in bad.stderr


def test_authors_masking_lets_a_repeated_target_in_when_scores_are_negative():
    """The authors' evaluation sets history scores to 0: a repeated target
    then outranks every negatively scored item; excluding history does not."""
    import torch

    from elcrec.evaluate import metrics_from_ranks, target_ranks

    rt = script("repeat_targets")
    n = 30  # columns: 0 = padding, items 1..29
    negative = -np.arange(1, n + 1, dtype=np.float64)[None, :] / n  # all below 0, item 1 best
    negative[:, 0] = -5.0  # the padding column (the authors score it too)
    # user 0 saw items 3 and 7 and its target is item 7 (a repeat)
    rows, cols = np.array([0, 0]), np.array([3, 7])
    top = rt.authors_top20(negative, rows, cols)
    assert set(top[0, :2]) == {3, 7}  # the two history items, at 0, lead the list
    position = rt.hit_positions(top, np.array([7]))
    assert position[0] in (0, 1)
    ranks = target_ranks(
        torch.tensor(negative[:, 1:]),
        torch.tensor([6]),
        (torch.tensor(rows), torch.tensor(cols - 1)),
    )
    assert metrics_from_ranks(ranks.numpy())["HR@20"] == 0.0
    # With every score positive the zeros sink: the authors' list is the plain top 20
    positive = 2 + negative  # items 1..29 above 0, padding still below
    top = rt.authors_top20(positive, rows, cols)
    assert top[0].tolist() == [i for i in range(1, n) if i not in (3, 7)][:20]
    target = np.array([12])  # a new item, 10th best once 3 and 7 are out
    got = rt.metrics_from_positions(rt.hit_positions(top, target))
    ranks = target_ranks(
        torch.tensor(positive[:, 1:]),
        torch.tensor([11]),
        (torch.tensor(rows), torch.tensor(cols - 1)),
    )
    want = metrics_from_ranks(ranks.numpy())
    assert got == pytest.approx({m: want[m] for m in got})
    assert got["HR@5"] == 0.0 and got["HR@20"] == 1.0


def test_paired_runs_per_user_metrics_average_to_the_evaluator():
    from elcrec.evaluate import metrics_from_ranks

    pr = script("paired_runs")
    ranks = np.array([0, 1, 4, 5, 19, 20, 300])
    per_user = pr.per_user_metrics(ranks)
    expected = metrics_from_ranks(ranks)
    for m in pr.METRICS:
        assert per_user[m].mean() == pytest.approx(expected[m])
    # by hand: rank 4 is in the top 5 at position 5, NDCG 1/log2(6)
    assert per_user["HR@5"].tolist() == [1, 1, 1, 0, 0, 0, 0]
    assert per_user["NDCG@5"][2] == pytest.approx(1 / math.log2(6))


def test_paired_bootstrap_against_a_plain_loop():
    pr = script("paired_runs")
    rng = np.random.default_rng(3)
    a = rng.random(50)
    b = a + rng.normal(0.05, 0.1, 50)
    diff, low, high = pr.paired_bootstrap(a, b, n_boot=200, seed=7)
    # the same draws, one resample at a time
    draws = np.random.default_rng(7).integers(0, 50, size=(200, 50))
    means = [statistics.fmean(b[i] - a[i] for i in row) for row in draws]
    assert diff == pytest.approx(statistics.fmean(b - a))
    assert (low, high) == pytest.approx(tuple(np.percentile(means, [2.5, 97.5])))
    assert low < diff < high
    # a constant shift has no spread: the interval is the shift itself
    assert pr.paired_bootstrap(a, a + 0.25, n_boot=50) == pytest.approx((0.25, 0.25, 0.25))


def test_paired_runs_compares_two_groups_of_runs(tmp_path, tiny):
    import sys

    from elcrec import train

    for name, variant, seeds in (("a", "sasrec", (1, 2)), ("b", "full", (1,))):
        for s in seeds:
            cfg = tiny(**{"model.variant": variant, "train.seed": s})
            train(cfg, tmp_path / name / f"seed{s}", progress=False)
    script = Path(__file__).resolve().parents[1] / "benchmarks" / "paired_runs.py"
    out = tmp_path / "tables"
    args = ["--tag", "t", "--boot", "20", "--out", str(out), f"A={tmp_path / 'a'}"]
    subprocess.run(
        [sys.executable, str(script), *args, f"B={tmp_path / 'b' / 'seed1'}"], check=True
    )
    payload = json.loads((out / "paired_t.json").read_text())
    assert len(payload["first"]["runs"]) == 2 and len(payload["second"]["runs"]) == 1
    for m in METRICS:
        r = payload["metrics"][m]
        tested = [
            json.loads((tmp_path / x / "test_metrics.json").read_text())["test"][m]
            for x in ("a/seed1", "a/seed2", "b/seed1")
        ]
        assert r["first"] == pytest.approx(statistics.fmean(tested[:2]))
        assert r["second"] == pytest.approx(tested[2])
        assert r["ci95"][0] <= r["difference"] <= r["ci95"][1]
        assert sum(q["users"] for q in r["by_history_length"]) == 300
    assert "| HR@20 |" in (out / "paired_t.md").read_text()
    bad = subprocess.run(
        [sys.executable, str(script), *args, f"B={tmp_path}"], capture_output=True, text=True
    )
    assert bad.returncode != 0 and "no finished run" in bad.stderr


def test_paired_runs_on_the_validation_split_is_the_runs_best_validation(tmp_path, tiny):
    """``--split valid`` (search trials, which never test): per-user ranks from
    the best weights on the validation split, whose means are the best
    epoch's validation metrics, with the validation items as targets."""
    from elcrec import Recommender, train
    from elcrec.data import Split

    run = tmp_path / "run"
    result = train(tiny(**{"train.evaluate_test": False}), run, progress=False)
    paired_runs = script("paired_runs")
    ranks, targets, history = paired_runs.user_ranks(run, "valid")
    per_user = paired_runs.per_user_metrics(ranks)
    for m in METRICS:
        assert per_user[m].mean() == pytest.approx(result["best_valid"][m])
    data = Recommender.load(run).data
    users = np.arange(data.n_users)
    np.testing.assert_array_equal(targets, Split(data, 50).targets(users, "valid"))
    # the validation item is the second to last: every item before it is history
    last_but_one = data.flat[data.offsets[1:] - 2]
    np.testing.assert_array_equal(targets, last_but_one)
    np.testing.assert_array_equal(history, data.lengths - 2)


def test_saved_test_ranks_are_the_ranks_of_the_best_weights(tmp_path, tiny):
    """A finished run keeps its per-user test ranks, which paired_runs reads
    without the weights; they equal the ranks recomputed from best.pt."""
    from elcrec import train

    run = tmp_path / "run"
    result = train(tiny(**{"model.variant": "full"}), run, progress=False)
    paired_runs = script("paired_runs")

    saved = paired_runs.user_ranks(run)
    assert len(saved[0]) == 300
    per_user = paired_runs.per_user_metrics(saved[0])
    for m in METRICS:
        assert per_user[m].mean() == pytest.approx(result["test"][m])
    (run / "test_ranks.npz").rename(tmp_path / "kept.npz")
    recomputed = paired_runs.user_ranks(run)
    for a, b in zip(saved, recomputed):
        np.testing.assert_array_equal(a, b)
    # with the file back, the weights and data files are no longer needed
    (tmp_path / "kept.npz").rename(run / "test_ranks.npz")
    for name in ("best.pt", "last.pt"):
        (run / name).unlink()
    shutil.rmtree(run / "store")
    for a, b in zip(saved, paired_runs.user_ranks(run)):
        np.testing.assert_array_equal(a, b)


def test_intent_scoring_at_zero_shift_is_the_evaluator(tmp_path, tiny):
    from elcrec import Recommender, train
    from elcrec.data import Split
    from elcrec.evaluate import rank_all

    train(tiny(), tmp_path / "run", progress=False)
    rec = Recommender.load(tmp_path / "run")
    split = Split(rec.data, rec.cfg.data.max_len)
    probe = script("intent_scoring")
    plain = rank_all(rec.model, split, "valid")
    assert np.array_equal(probe.shifted_ranks(rec, split, "valid", 0.0, "pooled"), plain)
    for nearest in ("pooled", "last"):
        shifted = probe.shifted_ranks(rec, split, "valid", 1.0, nearest)
        assert shifted.shape == plain.shape and not np.array_equal(shifted, plain)


def test_gpu_grid_script_brings_back_what_interrupted_cells_need(tmp_path):
    """benchmarks/gpu_grid.sh with stand-ins for python3 and nvidia-smi: the
    cells the deadline left unfinished come back with last.pt and best.pt
    (one file each), finished cells and the logs inside runs.tgz, no .pt there."""
    script = Path(__file__).parents[1] / "benchmarks" / "gpu_grid.sh"
    if shutil.which("bash") is None or shutil.which("tar") is None:
        pytest.skip("needs bash and tar")
    stubs = tmp_path / "stubs"
    stubs.mkdir()
    (stubs / "nvidia-smi").write_text("#!/bin/sh\necho 'H200, 0 %'\n")
    # The benchmark stand-in leaves three cells: finished, interrupted after a
    # validated epoch (best.pt), interrupted before any (no best.pt).
    (stubs / "python3").write_text(
        "#!/bin/sh\n"
        'case "$*" in *elcrec.cli*) ;; *) exit 0;; esac\n'
        'c="$GRID/plus/yelp/ELCRec+"\n'
        'mkdir -p "$c/seed1" "$c/seed2" "$c/seed3"\n'
        'for s in 1 2 3; do echo x > "$c/seed$s/last.pt"; echo {} > "$c/seed$s/config.json"; done\n'
        'echo x > "$c/seed1/best.pt"; echo x > "$c/seed2/best.pt"\n'
        'echo {} > "$c/seed1/test_metrics.json"\n'
        "echo deadline reached\n"
    )
    for stub in stubs.iterdir():
        stub.chmod(0o755)
    out, grid = tmp_path / "out", tmp_path / "grid"
    env = {**os.environ, "PATH": f"{stubs}:{os.environ['PATH']}", "OUT": str(out)}
    env["GRID"] = str(grid)
    done = subprocess.run(
        ["bash", str(script), "--preset", "plus"], cwd=tmp_path, env=env, capture_output=True
    )
    assert done.returncode == 0, done.stderr
    returned = sorted(p.name for p in out.iterdir())
    assert returned == ["best_1.tgz", "ckpt_1.tgz", "ckpt_2.tgz", "runs.tgz"]

    def members(name):
        with tarfile.open(out / name) as tar:
            return sorted(m.name.removeprefix("./") for m in tar.getmembers() if m.isfile())

    cell = "plus/yelp/ELCRec+/seed"
    assert members("ckpt_1.tgz") == [f"{cell}2/last.pt"]
    assert members("best_1.tgz") == [f"{cell}2/best.pt"]
    assert members("ckpt_2.tgz") == [f"{cell}3/last.pt"]
    runs = members("runs.tgz")
    assert {"gpu.log", "grid1.log", f"{cell}1/test_metrics.json"} <= set(runs)
    assert not [m for m in runs if m.endswith(".pt")]


def _fake_cell(grid, model, dataset, seed, ranks, wall_s, epochs, best, to_best, preset="fast"):
    """A grid cell's summary as `elcrec benchmark` keeps it, from hand-made ranks."""
    from elcrec.evaluate import metrics_from_ranks

    cell = grid / preset / dataset / model / f"seed{seed}"
    cell.mkdir(parents=True)
    ranks = np.asarray(ranks)
    result = {
        "test": metrics_from_ranks(ranks),
        "seed": seed,
        "best_epoch": best,
        "epochs_run": epochs,
        "wall_s": wall_s,
        "time_to_best_s": to_best,
        "device": "cpu",
    }
    (cell / "test_metrics.json").write_text(json.dumps(result))
    n = len(ranks)
    np.savez(cell / "test_ranks.npz", ranks=ranks, targets=np.arange(n), history=np.arange(n) % 7)
    return cell


def test_table1_fast_orders_pairs_by_their_paired_interval_and_times_from_the_runs(tmp_path):
    """Hand-made cells: CL4SRec ranks every test item first, SASRec never in the
    top 20, so CL4SRec is 'ahead' on every metric with a gap of exactly 1 on HR;
    ICLRec equals CL4SRec user for user ('level', interval [0, 0]); efficiency is
    wall time over epochs and the mean time to the best epoch."""
    t1f = script("table1_fast")
    grid, out = tmp_path / "grid", tmp_path / "out"
    n = 200
    for seed in (1, 2):
        _fake_cell(grid, "SASRec", "beauty", seed, [50] * n, 100.0, 10, 5, 50.0)
        _fake_cell(grid, "CL4SRec", "beauty", seed, [0] * n, 100.0, 10, 5, 50.0)
        _fake_cell(grid, "ICLRec", "beauty", seed, [0] * n, 300.0 * seed, 30, 20, 200.0 * seed)
        _fake_cell(
            grid, "ELCRec", "beauty", seed, [0] * (n // 2) + [50] * (n // 2), 80.0, 20, 9, 40.0
        )
    pairs = {(p["first"], p["second"], p["metric"]): p for p in t1f.paired_rows(grid, 50)}
    # the ablation pairs need cells that are not there: left out, not guessed
    assert {p[:2] for p in pairs} == {
        ("SASRec", "CL4SRec"),
        ("CL4SRec", "ICLRec"),
        ("ICLRec", "ELCRec"),
    }
    # B+ICL as good as B (= CL4SRec), B+ELCM never in the top 20: ELCRec is
    # then ahead of B+ELCM though behind ICLRec, and each row of the tables
    # must be read against its own predecessor
    for seed in (1, 2):
        _fake_cell(grid, "ELCRec-B+ICL", "beauty", seed, [0] * n, 100.0, 10, 5, 50.0)
        _fake_cell(grid, "ELCRec-B+ELCM", "beauty", seed, [50] * n, 100.0, 10, 5, 50.0)
    pairs = {(p["first"], p["second"], p["metric"]): p for p in t1f.paired_rows(grid, 50)}
    assert pairs[("ELCRec-B+ELCM", "ELCRec", "HR@5")]["verdict"] == "ahead"
    assert pairs[("CL4SRec", "ELCRec-B+ICL", "HR@5")]["verdict"] == "level"
    ahead = pairs[("SASRec", "CL4SRec", "HR@20")]
    assert ahead["difference"] == 1.0 and ahead["verdict"] == "ahead"
    assert pairs[("CL4SRec", "ICLRec", "NDCG@5")]["ci95"] == [0.0, 0.0]
    assert pairs[("CL4SRec", "ICLRec", "NDCG@5")]["verdict"] == "level"
    behind = pairs[("ICLRec", "ELCRec", "HR@5")]
    assert behind["difference"] == -0.5 and behind["verdict"] == "behind"
    assert behind["n_seeds"] == [2, 2]

    eff = {r["model"]: r for r in t1f.efficiency(benchmark.collect(grid, "fast"))}
    assert eff["ICLRec"]["epoch_s"] == 15.0  # (300/30 + 600/30) / 2
    assert eff["ICLRec"]["time_to_best_s"] == 300.0
    assert eff["ELCRec"]["epoch_s"] == 4.0 and eff["ELCRec"]["best_epoch"] == 9

    subprocess.run(
        [sys.executable, str(t1f.__file__), "--grid", str(grid), "--out", str(out), "--boot", "50"],
        check=True,
        capture_output=True,
    )
    with open(out / "table1_fast.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == ["model", "dataset", "metric", "mean", "std", "n_seeds", "paper"]
    hr5 = {r["model"]: r for r in rows if r["metric"] == "HR@5"}
    assert float(hr5["ELCRec"]["mean"]) == 0.5 and hr5["ELCRec"]["n_seeds"] == "2"
    assert float(hr5["ELCRec"]["paper"]) == TABLE1["Beauty"]["ELCRec"][METRICS.index("HR@5")]
    table = (out / "table1_fast.md").read_text()
    assert "| Beauty | CL4SRec | 2 |" in table and "| + + + + |" in table
    assert "| Beauty | ELCRec | 2 |" in table and "| − − − − |" in table
    elcrec_row = next(line for line in table.splitlines() if line.startswith("| Beauty | ELCRec |"))
    assert elcrec_row.endswith("| − − − − |")  # against ICLRec, not B+ELCM
    ablation = table.split("## Ablation")[1]
    assert "| vs B: = = = = |" in ablation and "| vs B: − − − − |" in ablation
    assert "vs B+ICL: − − − −; vs B+ELCM: + + + + |" in ablation
    with open(out / "efficiency.csv") as f:
        assert [r["model"] for r in csv.DictReader(f)] == ["ICLRec", "ELCRec"]
    assert "per epoch -73.3 %" in (out / "efficiency.md").read_text()


def test_every_committed_cell_s_ranks_give_its_test_metrics():
    """A grid cell's per-user ranks (test_ranks.npz, which paired comparisons
    read) reproduce the test metrics its test_metrics.json reports; this holds
    too for ranks added to an earlier cell from a rerun of it."""
    from elcrec.evaluate import metrics_from_ranks

    grid = Path(__file__).resolve().parents[1] / "benchmarks" / "grid"
    cells = sorted(grid.glob("**/seed*/test_ranks.npz"))
    assert cells, "no committed cell keeps its ranks"
    for path in cells:
        with np.load(path) as saved:
            from_ranks = metrics_from_ranks(saved["ranks"])
        reported = json.loads((path.parent / "test_metrics.json").read_text())["test"]
        for m in METRICS:
            assert from_ranks[m] == pytest.approx(reported[m], abs=1e-9), (path, m)


def test_reruns_give_their_ranks_to_the_cells_they_reproduce_and_stand_beside_the_others(
    tmp_path, monkeypatch
):
    """attach_reruns.py: a rerun equal to its committed cell to the last digit
    adds its ranks to the cell; one that drifted is kept under reruns/ and the
    cell keeps its numbers.  time_to_accuracy.py then pairs every seed with
    ranks, marking those read from reruns/."""
    attach, tta = script("attach_reruns"), script("time_to_accuracy")
    grid, reruns = tmp_path / "grid", tmp_path / "summaries"
    n = 100
    same, drifted = [3] * n, [3] * (n - 10) + [40] * 10
    # seed 3's rerun differs only below the top 20: MRR differs, HR and NDCG do not
    far, farther = [3] * (n - 10) + [50] * 10, [3] * (n - 10) + [70] * 10
    for seed, committed, rerun_ranks in ((1, same, same), (2, same, drifted), (3, far, farther)):
        for root in (grid, reruns):
            ranks = committed if root is grid else rerun_ranks
            cell = _fake_cell(
                root, "SASRec-CE", "beauty", seed, ranks, 400.0, 9, 5, 250.0, "fast-v1"
            )
            benchmark.Cell("SASRec-CE", "beauty", seed).config("fast-v1", {}).save(
                cell / "config.json"
            )
        (grid / "fast-v1" / "beauty" / "SASRec-CE" / f"seed{seed}" / "test_ranks.npz").unlink()
        _fake_cell(grid, "SASRec-CE", "beauty", seed, [2] * n, 100.0, 6, 4, 60.0)
    before = json.loads((grid / "fast-v1/beauty/SASRec-CE/seed2/test_metrics.json").read_text())

    done = dict(attach.attach(reruns, grid))
    assert done["fast-v1/beauty/SASRec-CE/seed1"].startswith("reproduced")
    assert done["fast-v1/beauty/SASRec-CE/seed2"].startswith("differs")
    assert done["fast-v1/beauty/SASRec-CE/seed3"].startswith("reproduced")
    assert (grid / "fast-v1/beauty/SASRec-CE/seed1/test_ranks.npz").exists()
    assert not (grid / "fast-v1/beauty/SASRec-CE/seed2/test_ranks.npz").exists()
    kept = grid / "reruns/fast-v1/beauty/SASRec-CE/seed2"
    assert sorted(p.name for p in kept.iterdir()) == [
        "config.json",
        "test_metrics.json",
        "test_ranks.npz",
    ]
    after = json.loads((grid / "fast-v1/beauty/SASRec-CE/seed2/test_metrics.json").read_text())
    assert after == before
    # a second pass changes nothing
    assert dict(attach.attach(reruns, grid))["fast-v1/beauty/SASRec-CE/seed1"].startswith("skipped")

    monkeypatch.setattr(tta, "GRID", grid)
    old, new = grid / "fast-v1/beauty/SASRec-CE", grid / "fast/beauty/SASRec-CE"
    r = tta.row("SASRec-CE", "Beauty", old, new, 50)
    assert r["paired_seeds"] == ["seed1", "seed2", "seed3"]
    assert r["paired_seeds_from_reruns"] == ["seed2"]
    # rank 2 against 3, and against 40 for 10 % of users in seed 2's rerun and
    # 50 in seed 3's cell: HR@5 gains (0.1 + 0.1) / 3 over the three seeds
    assert r["paired"]["HR@5"]["difference"] == pytest.approx(0.2 / 3)
    assert r["baseline_test"]["HR@5"] == pytest.approx(0.9667, abs=1e-4)  # the cells' own
    assert r["wall_ratio"] == 0.25 and r["wall_met"]
    assert "| 1, 2ʳ, 3 |" in tta.markdown([r], "cmd")


def test_backbone_table_sets_our_bsarec_against_its_published_beauty_numbers(tmp_path):
    """Two hand-made BSARec seeds on Beauty, one ranking every test item
    first and one never in the top 20: HR means 0.5 with std 0.707, each
    ratio is 0.5 / published, and a Sports seed compares its HRs only (the
    paper lists no Sports NDCG)."""
    bb = script("backbone")
    grid, out = tmp_path / "grid", tmp_path / "out"
    n = 50
    _fake_cell(grid, "BSARec", "beauty", 1, [0] * n, 10.0, 5, 3, 6.0)
    _fake_cell(grid, "BSARec", "beauty", 2, [30] * n, 10.0, 5, 3, 6.0)
    _fake_cell(grid, "BSARec", "sports", 1, [0] * n, 10.0, 5, 3, 6.0)
    _fake_cell(grid, "SASRec", "beauty", 1, [0] * n, 10.0, 5, 3, 6.0)  # not in the table
    subprocess.run(
        [sys.executable, str(bb.__file__), "--grid", str(grid), "--out", str(out)],
        check=True,
        capture_output=True,
    )
    with open(out / "backbone.csv") as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0]) == [
        "model", "dataset", "metric", "mean", "std", "n_seeds", "published", "ratio"
    ]  # fmt: skip
    assert {r["model"] for r in rows} == {"BSARec"}
    by = {(r["dataset"], r["metric"]): r for r in rows}
    hr20 = by[("Beauty", "HR@20")]
    assert float(hr20["mean"]) == 0.5 and hr20["n_seeds"] == "2"
    assert float(hr20["std"]) == pytest.approx(math.sqrt(0.5), abs=1e-5)
    assert float(hr20["published"]) == 0.1373
    assert float(hr20["ratio"]) == pytest.approx(0.5 / 0.1373, abs=1e-4)
    assert float(by[("Sports_and_Outdoors", "HR@5")]["published"]) == 0.0426
    assert by[("Sports_and_Outdoors", "NDCG@5")]["published"] == ""
    md = (out / "backbone.md").read_text()
    # Beauty's four and Sports' two HRs miss; Sports' two NDCGs have nothing
    assert md.count("| no |") == 6 and md.count("| — | — | — |") == 2


def test_grid_throughput_times_every_layout_and_sums_the_processes_running_together(tmp_path):
    """benchmarks/grid_throughput.py on synthetic data: three layouts (all
    threads, one thread, one one-thread process per core), each process's
    epoch time, and throughput as the sum of their epochs per minute."""
    gt = script("grid_throughput")
    subprocess.run(
        [sys.executable, str(gt.__file__), "--model", "SASRec", "--data", "synthetic"]
        + ["--epochs", "1", "--out", str(tmp_path)],
        check=True,
        capture_output=True,
        timeout=600,
    )
    result = json.loads((tmp_path / "grid_throughput_SASRec_fast.json").read_text())
    cores = os.cpu_count()
    rows = result["rows"]
    assert [(r["processes"], r["threads"]) for r in rows] == [(1, cores), (1, 1), (cores, 1)]
    for r in rows:
        assert len(r["train_epoch_s"]) == r["processes"]
        assert r["epochs_per_min"] == pytest.approx(sum(60 / s for s in r["train_epoch_s"]), 0.01)
    assert "| 1 process x 1 thread |" in (tmp_path / "grid_throughput_SASRec_fast.md").read_text()


def test_collect_says_what_precision_each_cell_ran_in(tmp_path):
    """Recorded by the run since train.precision = auto; before it, the config's
    value; configs older than the option ran in fp32; no config: unknown."""
    from elcrec import benchmark

    cells = {
        seed: _fake_cell(tmp_path, "SASRec", "beauty", seed, [1, 2], 1.0, 1, 0, 1.0)
        for seed in (1, 2, 3, 4)
    }
    result = json.loads((cells[1] / "test_metrics.json").read_text())
    (cells[1] / "test_metrics.json").write_text(json.dumps({**result, "precision": "fp32"}))
    (cells[1] / "config.json").write_text(json.dumps({"train": {"precision": "auto"}}))
    (cells[2] / "config.json").write_text(json.dumps({"train": {"precision": "bf16"}}))
    (cells[3] / "config.json").write_text(json.dumps({"train": {"seed": 3}}))
    got = {r["seed"]: r["precision"] for r in benchmark.collect(tmp_path, "fast")}
    assert got == {1: "fp32", 2: "bf16", 3: "fp32", 4: ""}


def _processes_naming(text: str) -> list[int]:
    """Pids of the live processes whose command line contains ``text`` (Linux /proc)."""
    pids = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if text.encode() in cmdline.read_bytes():
                pids.append(int(cmdline.parent.name))
        except OSError:  # the process ended while we looked
            pass
    return pids


@pytest.mark.skipif(not Path("/proc/self/cmdline").exists(), reason="needs Linux /proc")
def test_sigterm_to_the_grid_command_stops_its_cell_promptly_at_its_last_epoch(tmp_path):
    # `kill PID` on a background `elcrec benchmark` (which ignores SIGINT, as
    # every background job of a shell does) must stop the command and its
    # training child within seconds, the child keeping its last finished epoch.
    slow = {**TINY, "train.epochs": 400, "train.patience": 400}
    cmd = [sys.executable, "-m", "elcrec.cli", "benchmark", "--preset", "paper"]
    cmd += ["--models", "CL4SRec", "--datasets", "beauty", "--seeds", "1"]
    cmd += ["--work", tmp_path / "work", "--summaries", tmp_path / "summaries"]
    cmd += ["--results", tmp_path / "results", "--beyond-results", tmp_path / "results"]
    cmd += ["--device", "cpu", "--threads", "1", "--set", *(f"{k}={v}" for k, v in slow.items())]
    cmd = list(map(str, cmd))
    parent = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    run = benchmark.grid(["CL4SRec"], ["beauty"], [1])[0].directory(tmp_path / "work", "paper")
    metrics = run / "metrics.jsonl"
    deadline = time.monotonic() + 120
    while not (metrics.exists() and len(metrics.read_text().splitlines()) >= 2):
        assert parent.poll() is None, parent.stderr.read()
        assert time.monotonic() < deadline, "no epoch finished in 2 minutes"
        time.sleep(0.2)
    assert _processes_naming(str(run)), "the cell runs in a child process"

    t0 = time.monotonic()
    parent.send_signal(signal.SIGTERM)
    assert parent.wait(timeout=60) == 130
    stopped_s = time.monotonic() - t0
    assert stopped_s < 20, f"took {stopped_s:.1f} s to stop"
    assert not _processes_naming(str(run)), "the training child outlived the grid"
    assert "interrupted; resume with" in (run / "log.txt").read_text()
    assert (run / "last.pt").exists() and not (run / "test_metrics.json").exists()
