"""The command line, including its errors on bad input."""

import json

import pytest

from elcrec.cli import main
from tests.conftest import tiny_config
from tests.helpers import elcrec


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    folder = tmp_path_factory.mktemp("cli")
    tiny_config().save(folder / "config.json")
    assert (
        main(
            [
                "train",
                "--config",
                str(folder / "config.json"),
                "--run-dir",
                str(folder / "run"),
                "--no-progress",
            ]
        )
        == 0
    )
    return folder / "run"


def test_train_prints_metrics_and_intents(trained, capsys):
    # the finished run, asked again, prints its table and where it lives
    config = trained.parent / "config.json"
    assert main(["train", "--config", str(config), "--run-dir", str(trained)]) == 0
    captured = capsys.readouterr()
    result = json.loads((trained / "test_metrics.json").read_text())
    assert f"run folder: {trained}" in captured.err
    table = captured.out.splitlines()
    assert table[1].split() == ["HR@5", "HR@10", "HR@20", "NDCG@5", "NDCG@10", "NDCG@20", "MRR"]
    assert table[2].split() == [f"{result['test'][m]:.4f}" for m in table[1].split()]
    intents = result["intents"]
    assert 0.0 <= intents["random_nmi"] < intents["nmi"] <= 1.0  # planted intents found
    assert f"NMI with the planted intents {intents['nmi']:.3f}" in captured.out
    assert f"(random {intents['random_nmi']:.3f})" in captured.out
    assert table[-1] == f"all results: {trained / 'test_metrics.json'}"
    # --json prints the whole result instead
    assert main(["train", "--config", str(config), "--run-dir", str(trained), "--json"]) == 0
    assert json.loads(capsys.readouterr().out) == result


def test_recommend_known_user_and_sequence(trained, capsys):
    assert main(["recommend", str(trained), "--user", "5", "--k", "3"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["user"] == "5" and len(out["items"]) == 3 and isinstance(out["intent"], int)
    assert main(["recommend", str(trained), "--items", "1", "2", "999999", "--k", "4"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["unknown_items"] == [999999] and len(out["items"]) == 4


def test_recommend_from_file(trained, tmp_path, capsys):
    f = tmp_path / "items.txt"
    f.write_text("3\n4\n5\n")
    assert main(["recommend", str(trained), "--items-file", str(f)]) == 0
    assert len(json.loads(capsys.readouterr().out)["items"]) == 10
    f.write_text("")
    assert main(["recommend", str(trained), "--items-file", str(f)]) == 2
    assert "empty" in capsys.readouterr().err


def test_intents_export_matches_the_model(trained, tmp_path, capsys):
    import numpy as np
    import pandas as pd

    from elcrec import Recommender
    from elcrec.evaluate import assign_intents

    assert main(["intents", str(trained), "--out", str(tmp_path), "--with-repr"]) == 0
    assert "users in" in capsys.readouterr().out
    users = pd.read_parquet(tmp_path / "users.parquet")
    intents = pd.read_csv(tmp_path / "intents.csv")
    rec = Recommender.load(trained)
    assert list(users["user"].astype(str)) == [str(u) for u in rec.data.user_ids]
    np.testing.assert_array_equal(users["intent"], assign_intents(rec.model, rec.data))
    assert (users["intent"] == users["center_1"]).all()
    assert (users["sq_distance_1"] <= users["sq_distance_2"]).all()
    assert (users["sq_distance_2"] <= users["sq_distance_3"]).all()
    assert sum(c.startswith("repr_") for c in users.columns) == rec.cfg.model.hidden
    assert intents["users"].sum() == len(users) and len(intents) == rec.cfg.model.n_clusters
    sizes = users["intent"].value_counts()
    for row in intents.itertuples():
        assert row.users == sizes.get(row.intent, 0)

    assert (intents["source"] == "learned").all()


def test_intents_fitted_after_training_for_an_encoder_that_learned_none(tiny, tmp_path, capsys):
    """BSARec alone (no learned centers): `elcrec intents` fits k-means to its
    trained users, on the unit sphere where learned centers would live; the
    groups find the synthetic data's planted intents."""
    import numpy as np
    import pandas as pd
    import torch

    from elcrec import Recommender, train
    from elcrec.evaluate import fit_intents, nearest_intents, nmi
    from elcrec.models import configure

    cfg = configure(tiny(), "BSARec").replace(**{"train.epochs": 4, "train.batch_size": 64})
    train(cfg, tmp_path / "run", progress=False)
    rec = Recommender.load(tmp_path / "run")
    assert not rec.model.uses_intents
    with pytest.raises(ValueError, match="elcrec intents RUN --k"):
        rec.intent([1, 2, 3])
    assert main(["intents", str(tmp_path / "run"), "--out", str(tmp_path / "a")]) == 0
    assert "(kmeans)" in capsys.readouterr().out
    intents = pd.read_csv(tmp_path / "a" / "intents.csv")
    assert len(intents) == cfg.model.n_clusters and (intents["source"] == "kmeans").all()
    # the export is the nearest of the fitted centers (same seed, same centers)
    k = 4
    users, table = rec.export_intents(tmp_path / "b", k=k, seed=3)
    centers = fit_intents(rec.model, rec.data, k, seed=3)
    torch.testing.assert_close(centers.norm(dim=1), torch.ones(k))
    ids, dists, _ = nearest_intents(rec.model, rec.data, top=3, centers=centers)
    np.testing.assert_array_equal(users["intent"], ids[:, 0])
    np.testing.assert_allclose(users["sq_distance_1"], dists[:, 0], rtol=1e-6)
    assert ((dists >= -1e-5) & (dists <= 4 + 1e-5)).all()  # unit vectors: 2 - 2 cos
    assert table["users"].sum() == len(users) and len(table) == k
    planted = rec.data.planted_intents
    random = np.random.default_rng(0).integers(0, k, len(planted))
    assert nmi(planted, users["intent"].to_numpy()) > nmi(planted, random) + 0.1
    for bad in (0, 301):
        assert main(["intents", str(tmp_path / "run"), "--k", str(bad)]) == 2
        assert f"k = {bad}, expected 1 to 300 (the users)" in capsys.readouterr().err


def test_intents_k_on_a_model_with_learned_ones_fits_instead(trained, tmp_path, capsys):
    import pandas as pd

    assert main(["intents", str(trained), "--out", str(tmp_path), "--k", "3"]) == 0
    assert "of 3 intents (kmeans)" in capsys.readouterr().out
    intents = pd.read_csv(tmp_path / "intents.csv")
    assert len(intents) == 3 and (intents["source"] == "kmeans").all()


def test_typical_items_against_a_counting_loop():
    import numpy as np

    from elcrec.data import Interactions
    from elcrec.inference import typical_items

    # 4 users; items a..d become 1..4; users 10, 11 in intent 0, users 12, 13 in intent 1.
    seqs = [["a", "a", "b"], ["a", "c"], ["d", "d", "b"], ["d", "c", "c"]]
    data = Interactions.from_sequences([10, 11, 12, 13], seqs)
    intent = np.array([0, 0, 1, 1])
    got = typical_items(intent, data, 2, top=10)
    # 11 interactions: a 3, b 2, c 3, d 3.  Intent 0 has 5: a 3 (lift (3/5)/(3/11)),
    # b 1 (lift 1.1), c 1 (lift 0.73, not typical).  Intent 1 has 6: d 3, c 2
    # (lift (2/6)/(3/11) = 1.22), b 1 (lift 0.92, not typical).
    assert [(i, c) for i, c, _ in got[0]] == [(1, 3), (2, 1)]
    assert [(i, c) for i, c, _ in got[1]] == [(4, 3), (3, 2)]
    assert got[0][0][2] == pytest.approx((3 / 5) / (3 / 11))
    assert got[1][1][2] == pytest.approx((2 / 6) / (3 / 11))


def test_batch_recommendations_for_many_users(trained, tmp_path, capsys):
    import pandas as pd

    from elcrec import Recommender

    rec = Recommender.load(trained)
    out = tmp_path / "recs.parquet"
    assert main(["recommend", str(trained), "--users", "all", "--k", "3", "--out", str(out)]) == 0
    table = pd.read_parquet(out)
    assert len(table) == 3 * rec.data.n_users
    assert list(table.columns) == ["user", "rank", "item", "score", "intent"]
    for user in (rec.data.user_ids[0], rec.data.user_ids[7]):
        rows = table[table["user"] == user].sort_values("rank")
        expected = rec.recommend_user(user, 3)
        assert rows["item"].tolist() == expected.items
        assert rows["score"].tolist() == pytest.approx(expected.scores, rel=1e-6)
        assert (rows["intent"] == expected.intent).all()
    users_file = tmp_path / "users.txt"
    users_file.write_text(f"{rec.data.user_ids[2]}\n\n{rec.data.user_ids[5]}\n")
    small = tmp_path / "two.parquet"
    assert main(["recommend", str(trained), "--users", str(users_file), "--out", str(small)]) == 0
    assert pd.read_parquet(small)["user"].unique().tolist() == [
        rec.data.user_ids[2],
        rec.data.user_ids[5],
    ]
    capsys.readouterr()
    users_file.write_text(f"{rec.data.user_ids[2]}\nghost\n")
    assert main(["recommend", str(trained), "--users", str(users_file), "--out", str(small)]) == 2
    assert f"{users_file}:2: unknown user 'ghost'" in capsys.readouterr().err
    assert len(pd.read_parquet(small)) == 20  # the earlier file is untouched
    assert main(["recommend", str(trained), "--users", "all"]) == 2
    assert "--out" in capsys.readouterr().err


def test_exported_scorer_matches_the_eager_model(trained, tmp_path, capsys):
    import numpy as np
    import torch

    from elcrec import Recommender
    from elcrec.data import right_aligned

    assert main(["export", str(trained), "--out", str(tmp_path)]) == 0
    programs = [
        torch.export.load(str(tmp_path / "scorer.pt2")).module(),
        torch.jit.load(str(tmp_path / "scorer.pt")),
    ]
    rec = Recommender.load(trained)
    data = rec.data
    users = np.arange(0, data.n_users, 7)  # real sequences, many lengths
    items = right_aligned(data.flat, data.offsets[users], data.offsets[users + 1], 20)
    items = torch.from_numpy(items)
    with torch.no_grad():
        eager = rec.model.score(items)
        for program in programs:
            exported = program(items)
            assert exported.shape == (len(users), data.n_items)
            assert (exported - eager).abs().max() <= 1e-5
    info = json.loads((tmp_path / "items.json").read_text())
    assert info["max_len"] == 20 and len(info["item_ids"]) == data.n_items


def test_evaluate(trained, capsys):
    assert main(["evaluate", str(trained), "--stage", "valid"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["stage"] == "valid" and 0 <= out["NDCG@20"] <= 1


@pytest.mark.parametrize(
    "argv, message",
    [
        (["recommend", "{run}", "--user", "no-such-user"], "unknown user"),
        (["recommend", "{tmp}", "--items", "1"], "missing"),
        (["train", "--data", "{tmp}/missing.txt"], "no such file"),
        (["train", "--data", "{tmp}/bad.txt"], "bad.txt:2: item id 'x' is not an integer"),
        (["train", "--data", "{tmp}/empty.txt"], "empty file"),
        (["train", "--data", "{tmp}/short.txt"], "has 2 item(s)"),
        (["train", "--data", "{tmp}/log.csv"], "missing column(s) ['timestamp']"),
        (["train", "--set", "model.dropout=2"], "model.dropout"),
        (["train", "--set", "model.nope=1"], "unknown option model.nope"),
        (["train", "--set", "train.epochs=x"], "train.epochs"),
        (["train", "--set", "model.alpha"], "'model.alpha': expected SECTION.KEY=VALUE"),
        (["train", "--config", "{tmp}/broken.json"], "not valid json"),
    ],
)
def test_bad_input_exits_2_with_a_message(trained, tmp_path, capsys, monkeypatch, argv, message):
    monkeypatch.chdir(tmp_path)  # default run folders land here
    (tmp_path / "bad.txt").write_text("1 2 3 4\n2 5 x 6\n")
    (tmp_path / "empty.txt").write_text("")
    (tmp_path / "short.txt").write_text("1 2 3 4\n2 5 6\n")
    (tmp_path / "log.csv").write_text("user_id,item_id\n1,2\n")
    (tmp_path / "broken.json").write_text("{")
    argv = [a.format(run=trained, tmp=tmp_path) for a in argv]
    assert main(argv + ["--no-progress"] if argv[0] == "train" else argv) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "runs").exists(), "a failed run left a folder behind"


def test_a_pairs_file_with_short_users_trains_the_best_preset_with_no_other_flag(
    beauty_dir, tmp_path
):
    """A "user item" file built from Beauty (users interleaved, so ids repeat
    apart; some users with 1-2 items): `elcrec data` reads it and
    `elcrec train --data FILE --drop-short-users --preset plus` trains it."""
    from pathlib import Path

    from elcrec.data import read_sequences

    users, seqs = read_sequences(Path(beauty_dir) / "Beauty.txt")
    users, seqs = users[:300], seqs[:300]  # k = 256 intents need 256 users
    seqs[:20] = [s[:1] for s in seqs[:10]] + [s[:2] for s in seqs[10:20]]  # short users
    lines = [
        f"{u} {s[t]}" for t in range(max(map(len, seqs))) for u, s in zip(users, seqs) if t < len(s)
    ]
    path = tmp_path / "beauty_pairs.txt"
    path.write_text("\n".join(lines) + "\n")
    done = elcrec(
        ["data", str(path), "--drop-short-users"], tmp_path, ELCREC_WORK=tmp_path / "work"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["users"] == 280
    short = elcrec(["data", str(path)], tmp_path, ELCREC_WORK=tmp_path / "work")
    assert short.returncode == 2 and "--drop-short-users" in short.stderr
    done = elcrec(
        ["train", "--data", str(path), "--drop-short-users", "--preset", "plus"],
        tmp_path,
        ELCREC_WORK=tmp_path / "work",
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = tmp_path / "work" / "runs" / "beauty_pairs-ELCRec+-seed1"
    result = json.loads((run / "test_metrics.json").read_text())
    # (on 280 users the plus preset's plateau schedule stops within a few
    # epochs, near chance: this test is about reading the file, not accuracy)
    assert result["epochs_run"] >= 1 and 0.0 <= result["test"]["HR@20"] <= 1.0
    config = json.loads((run / "config.json").read_text())
    assert config["data"]["format"] == "auto" and config["model"]["name"] == "ELCRec+"
    assert "not one of the benchmarks" in config["origin"]


def test_tune_on_a_file_within_minutes_writes_a_preset_that_trains(tmp_path):
    data = tmp_path / "clicks.csv"
    from elcrec.data import synthetic

    synthetic(400, 200, 4, seed=3).to_log(data)
    work = tmp_path / "work"
    done = elcrec(
        ["tune", "--data", str(data), "--minutes", "0.5", "--trials", "3", "--epochs", "2"],
        tmp_path,
        ELCREC_WORK=work,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    preset_file = work / "tune" / "clicks" / "preset.json"
    written = json.loads(preset_file.read_text())
    assert written["preset"] == "plus" and written["options"]["model.loss"] == "ce"
    assert "validation" in written["origin"]
    best = json.loads((work / "tune" / "clicks" / "best.json").read_text())
    assert best["budget"]["minutes"] == 0.5 and best["wall_s_total"] < 0.5 * 60 + 5
    done = elcrec(
        ["train", "--data", str(data), "--preset", str(preset_file), "--epochs", "1"],
        tmp_path,
        ELCREC_WORK=work,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    run = work / "runs" / "clicks-ELCRec+-seed1"
    config = json.loads((run / "config.json").read_text())
    for key, value in written["options"].items():
        section, name = key.split(".")
        assert config[section][name] == value
    assert config["origin"] == written["origin"]


def test_common_runtime_flags_reach_the_config(tmp_path, capsys):
    flags = ["--threads", "1", "--device", "cpu", "--epochs", "1", "--patience", "3"]
    flags += ["--batch-size", "32", "--lr", "0.002", "--no-progress"]
    args = ["train", "--set", "data.synthetic_users=200", "--run-dir", str(tmp_path / "r")]
    assert main([*args, *flags]) == 0
    from elcrec.config import RunConfig

    t = RunConfig.load(tmp_path / "r" / "config.json").train
    assert (t.threads, t.device, t.epochs, t.patience, t.batch_size, t.lr) == (
        1, "cpu", 1, 3, 32, 0.002,
    )  # fmt: skip
    out = capsys.readouterr().out
    assert "HR@20" in out and "NMI with the planted intents" in out  # the readable table
