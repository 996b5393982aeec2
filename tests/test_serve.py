"""The HTTP service, including a bad-request suite: every bad request gets a
4xx that says what is wrong, and the service keeps answering."""

import pytest
from fastapi.testclient import TestClient

from elcrec import Recommender, train
from elcrec.serve import MAX_BODY_BYTES, create_app


@pytest.fixture(scope="module")
def client_and_rec(tmp_path_factory):
    from tests.conftest import tiny_config

    run = tmp_path_factory.mktemp("serve") / "run"
    train(tiny_config(), run, progress=False)
    rec = Recommender.load(run)
    with TestClient(create_app(rec)) as client:  # runs the app's startup (the batcher)
        yield client, rec


def test_recommend_a_sequence_a_user_and_an_intent(client_and_rec):
    client, rec = client_and_rec
    seq = [rec.data.item_ids[i - 1] for i in rec.data.sequence(3)]
    r = client.post("/recommend", json={"items": seq, "k": 5})
    assert r.status_code == 200
    body = r.json()
    assert body == rec.recommend(seq, 5).to_dict()
    assert len(body["items"]) == 5 and not set(body["items"]) & set(seq)
    user = rec.data.user_ids[3]
    r = client.get(f"/users/{user}/recommendations", params={"k": 5})
    assert r.status_code == 200 and r.json()["items"] == body["items"]
    r = client.post("/intent", json={"items": seq})
    assert r.status_code == 200
    got = r.json()
    assert got["intent"] == body["intent"] == got["nearest"][0]["intent"]
    dists = [n["sq_distance"] for n in got["nearest"]]
    assert dists == sorted(dists) and len(dists) == 3
    assert client.get("/health").json() == {"status": "ok"}
    meta = client.get("/metadata").json()
    assert meta["items"] == rec.data.n_items and meta["intents"] == rec.cfg.model.n_clusters


def test_unknown_items_are_named_in_a_partial_answer(client_and_rec):
    client, rec = client_and_rec
    seq = [rec.data.item_ids[0], "no-such-item", 987654321]
    r = client.post("/recommend", json={"items": seq, "k": 3})
    assert r.status_code == 200
    assert r.json()["unknown_items"] == ["no-such-item", 987654321]
    assert len(r.json()["items"]) == 3
    r = client.post("/intent", json={"items": seq})
    assert r.status_code == 200 and r.json()["unknown_items"] == ["no-such-item", 987654321]


@pytest.mark.parametrize(
    "path, body, status, message",
    [
        ("/recommend", {"items": []}, 422, "at least 1 item"),
        ("/recommend", {"items": [1] * 1001}, 422, "at most 1000 items"),
        ("/recommend", {"items": [1], "k": 0}, 422, "greater than or equal to 1"),
        ("/recommend", {"items": [1], "k": 10**9}, 422, "less than or equal to 1000"),
        ("/recommend", {"items": [1], "k": "ten"}, 422, "valid integer"),
        ("/recommend", {"items": "1 2 3"}, 422, "valid list"),
        ("/recommend", {"items": [[1]]}, 422, "items"),
        ("/recommend", {"item": [1]}, 422, "Field required"),
        ("/recommend", {"items": [1], "extra": 1}, 422, "Extra inputs"),
        ("/recommend", None, 422, "Field required"),
        ("/intent", {"items": []}, 422, "at least 1 item"),
    ],
)
def test_bad_requests_get_a_4xx_that_says_why(client_and_rec, path, body, status, message):
    client, _ = client_and_rec
    r = client.post(path, json=body)
    assert r.status_code == status
    assert message in r.text
    assert client.get("/health").status_code == 200  # still serving


def test_concurrent_requests_batched_together_get_their_own_answers(client_and_rec):
    from concurrent.futures import ThreadPoolExecutor

    client, rec = client_and_rec
    cases = [
        ([rec.data.item_ids[i - 1] for i in rec.data.sequence(u)], 1 + u % 7, u % 3 != 0)
        for u in range(40)
    ]

    def ask(case):
        items, k, exclude = case
        return client.post("/recommend", json={"items": items, "k": k, "exclude_seen": exclude})

    with ThreadPoolExecutor(16) as pool:
        answers = list(pool.map(ask, cases))
    for (items, k, exclude), r in zip(cases, answers):
        expected = rec.recommend(items, k, exclude)
        assert r.status_code == 200 and r.json()["items"] == expected.items
        assert r.json()["scores"] == pytest.approx(expected.scores, rel=1e-5)


def test_malformed_json_oversized_body_and_unknown_user(client_and_rec):
    client, _ = client_and_rec
    r = client.post(
        "/recommend", content=b"{not json", headers={"content-type": "application/json"}
    )
    assert r.status_code == 422 and "JSON" in r.text
    big = b'{"items": [' + b"1," * MAX_BODY_BYTES + b"1]}"
    r = client.post("/recommend", content=big, headers={"content-type": "application/json"})
    assert r.status_code == 413 and "bytes" in r.text
    r = client.get("/users/nobody/recommendations")
    assert r.status_code == 404 and "nobody" in r.text
    r = client.get("/users/5/recommendations", params={"k": -1})
    assert r.status_code == 422
    assert client.get("/health").status_code == 200


def test_approximate_search_agrees_with_exact_scoring(client_and_rec):
    _, exact = client_and_rec
    approx = Recommender(exact.model, exact.data, exact.cfg).use_ann(ef_search=256)
    hits = total = 0
    for u in range(0, exact.data.n_users, 5):
        user = exact.data.user_ids[u]
        a, e = approx.recommend_user(user, 10), exact.recommend_user(user, 10)
        assert not set(a.items) & {exact.data.item_ids[i - 1] for i in exact.data.sequence(u)}
        assert a.scores == sorted(a.scores, reverse=True) and a.intent == e.intent
        hits += len(set(a.items) & set(e.items))
        total += 10
    assert hits / total >= 0.95
