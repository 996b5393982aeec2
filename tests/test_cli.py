"""The command line, including its errors on bad input."""

import json

import pytest

from elcrec.cli import main
from tests.conftest import tiny_config


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
    # the finished run, asked again, prints its result and where it lives
    config = trained.parent / "config.json"
    assert main(["train", "--config", str(config), "--run-dir", str(trained)]) == 0
    captured = capsys.readouterr()
    printed = json.loads(captured.out)
    assert printed == json.loads((trained / "test_metrics.json").read_text())
    assert f"run folder: {trained}" in captured.err
    assert {"test", "best_epoch", "wall_s", "intents"} <= set(printed)
    assert set(printed["test"]) >= {"HR@5", "HR@20", "NDCG@5", "NDCG@20", "MRR"}
    intents = printed["intents"]
    assert 0.0 <= intents["random_nmi"] < intents["nmi"] <= 1.0  # planted intents found


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
