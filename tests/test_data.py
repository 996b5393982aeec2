"""Readers, errors, k-core, id mapping, synthetic data and benchmark download."""

import hashlib
import http.server
import threading
from functools import partial

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elcrec import data as D
from elcrec.config import DataConfig


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def test_read_sequences_and_mapping(tmp_path):
    path = write(tmp_path, "s.txt", "7 30 10 20\n3 10 40 30\n")
    users, seqs = D.read_sequences(path)
    assert users == [7, 3] and seqs == [[30, 10, 20], [10, 40, 30]]
    data = D.Interactions.from_sequences(users, seqs)
    assert data.item_ids == [10, 20, 30, 40]
    assert data.sequence(0).tolist() == [3, 1, 2]
    assert [data.item_ids[i - 1] for i in data.sequence(1)] == [10, 40, 30]


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 2 3\n2 x 4\n", "s.txt:2: item id 'x' is not an integer"),
        ("1 2 3\nu 4 5\n", "s.txt:2: user id 'u' is not an integer"),
        ("1 2 3\n1 4 5\n", "s.txt:2: user 1 already listed on line 1"),
        ("1 2 3\n5\n", "s.txt:2: user 5 has no items"),
        ("\n\n", "s.txt: empty file"),
    ],
)
def test_read_sequences_errors(tmp_path, text, message):
    with pytest.raises(D.DataError, match=message.replace(".", r"\.")):
        D.read_sequences(write(tmp_path, "s.txt", text))


def test_read_pairs(tmp_path):
    users, seqs = D.read_pairs(write(tmp_path, "p.txt", "1 5\n2 6\n1 7\n1 5\n"))
    assert users == [1, 2] and seqs == [[5, 7, 5], [6]]
    with pytest.raises(D.DataError, match=r"p\.txt:2: expected 'user item', got 3 fields"):
        D.read_pairs(write(tmp_path, "p.txt", "1 5\n1 2 3\n"))


def test_read_log_sorts_by_time_keeping_ties_in_file_order(tmp_path):
    frame = pd.DataFrame(
        {"u": ["a", "b", "a", "a", "b"], "i": ["x", "y", "z", "w", "x"], "t": [3, 1, 1, 3, 2]}
    )
    for suffix, writer in (
        (".csv", lambda p: frame.to_csv(p, index=False)),
        (".tsv", lambda p: frame.to_csv(p, index=False, sep="\t")),
        (".parquet", lambda p: frame.to_parquet(p)),
    ):
        path = tmp_path / f"log{suffix}"
        writer(path)
        for chunk_rows in (2, 1 << 20):  # chunks of two rows: ids met again, and new
            data = D.read_log(path, "u", "i", "t", chunk_rows=chunk_rows)
            assert as_lists(data) == {"a": ["z", "x", "w"], "b": ["y", "x"]}


def as_lists(data):
    """{user: [item, ...]} in original ids."""
    return {
        D._plain(data.user_ids[u]): [D._plain(data.item_ids[i - 1]) for i in data.sequence(u)]
        for u in range(data.n_users)
    }


def reference_read_log(frame, user, item, time):
    """The obviously-correct reader: pandas, a stable sort, a group-by."""
    frame = frame.assign(_row=np.arange(len(frame))).sort_values(
        [user, time, "_row"], kind="stable"
    )
    return {u: list(g[item]) for u, g in frame.groupby(user, sort=True)}


@settings(max_examples=40, deadline=None)
@given(
    rows=st.lists(
        st.tuples(st.integers(0, 30), st.integers(0, 12), st.integers(0, 5)),
        min_size=1,
        max_size=60,
    ),
    chunk_rows=st.integers(1, 7),
    text_ids=st.booleans(),
)
def test_chunked_log_reader_matches_a_pandas_reference(
    tmp_path_factory, rows, chunk_rows, text_ids
):
    frame = pd.DataFrame(rows, columns=["u", "i", "t"])
    if text_ids:  # ids that do not read as numbers sort as text
        frame = frame.assign(u="u" + frame.u.astype(str), i="i" + frame.i.astype(str))
    # Parquet: chunks of chunk_rows rows (a text file is read in blocks of 64 KiB)
    path = tmp_path_factory.mktemp("log") / ("log.parquet" if chunk_rows % 2 else "log.csv")
    frame.to_parquet(path) if chunk_rows % 2 else frame.to_csv(path, index=False)
    data = D.read_log(path, "u", "i", "t", chunk_rows=chunk_rows)
    assert as_lists(data) == reference_read_log(frame, "u", "i", "t")
    assert list(data.user_ids) == sorted(set(frame.u))  # ids numbered in sorted order
    assert list(data.item_ids) == sorted(set(frame.i))


def test_read_log_numbers_ids_that_are_all_integers_as_numbers(tmp_path):
    path = write(tmp_path, "l.csv", "user_id,item_id,timestamp\n10,9,1\n10,10,2\n9,100,1\n")
    data = D.read_log(path, chunk_rows=1)
    assert list(data.user_ids) == [9, 10] and list(data.item_ids) == [9, 10, 100]


def test_read_log_errors(tmp_path):
    path = write(tmp_path, "l.csv", "user,item\n1,2\n")
    with pytest.raises(D.DataError, match=r"l\.csv: missing column\(s\) \['timestamp'\]"):
        D.read_log(path, "user", "item", "timestamp")
    path = write(tmp_path, "l.csv", "user_id,item_id,timestamp\n1,2,5\n1,,6\n")
    with pytest.raises(D.DataError, match=r"column 'item_id' is empty on line 3"):
        D.read_log(path)
    path = write(tmp_path, "l.csv", "user_id,item_id,timestamp\n1,2,soon\n")
    with pytest.raises(D.DataError, match=r"'timestamp' line 2: 'soon' is not a time"):
        D.read_log(path)
    with pytest.raises(D.DataError, match="empty file"):
        D.read_log(write(tmp_path, "e.csv", ""))
    # a chunk further down: the line still counts from the top of the file
    path = write(tmp_path, "l.csv", "user_id,item_id,timestamp\n1,2,5\n1,3,6\n1,4,x\n")
    with pytest.raises(D.DataError, match=r"'timestamp' line 4: 'x' is not a number"):
        D.read_log(path, chunk_rows=1)
    frame = pd.DataFrame({"user_id": [1, 1, None], "item_id": [2, 3, 4], "timestamp": [5, 6, 7]})
    frame.to_parquet(tmp_path / "l.parquet")
    with pytest.raises(D.DataError, match=r"column 'user_id' is empty on line 4"):
        D.read_log(tmp_path / "l.parquet", chunk_rows=2)


def test_short_users_are_an_error_unless_dropped(tmp_path):
    path = write(tmp_path, "s.txt", "1 1 2 3\n2 4 5\n")
    with pytest.raises(D.DataError, match="user 2 has 2 item"):
        D.load(DataConfig(source=str(path)))
    data = D.load(DataConfig(source=str(path), drop_short_users=True))
    assert data.user_ids == [1] and data.sequence(0).tolist() == [1, 2, 3]


def reference_kcore(users: list, seqs: list[list], k: int):
    """The obviously-correct k-core: count, drop, repeat until nothing changes."""
    while k > 1:
        count: dict = {}
        for seq in seqs:
            for item in seq:
                count[item] = count.get(item, 0) + 1
        kept = [[i for i in seq if count[i] >= k] for seq in seqs]
        new = [(u, s) for u, s in zip(users, kept) if len(s) >= k]
        if sum(len(s) for _, s in new) == sum(map(len, seqs)):
            break
        users, seqs = [u for u, _ in new], [s for _, s in new]
    return users, seqs


def kcore(users, seqs, k):
    data = D.kcore_filter(D.Interactions.from_sequences(users, seqs), k)
    return list(data.user_ids), [
        [data.item_ids[i - 1] for i in data.sequence(u)] for u in range(data.n_users)
    ]


def test_kcore_reaches_a_fixed_point():
    users = [1, 2, 3, 4]
    seqs = [[1, 2, 3], [1, 2, 3], [1, 2, 4], [5, 5]]
    u, s = kcore(users, seqs, 2)
    # item 4 and 5... item 5 occurs twice but only for user 4 (2 items: kept at k=2)
    assert u == [1, 2, 3, 4] and s[2] == [1, 2]
    u, s = kcore(users, seqs, 3)
    # k=3: items 4, 5 go; user 3 then has 2 items and goes; items 1-3 keep 2 < 3 -> all go
    assert u == [] and s == []


@settings(max_examples=60, deadline=None)
@given(
    seqs=st.lists(st.lists(st.integers(1, 15), min_size=1, max_size=12), min_size=1, max_size=25),
    k=st.integers(0, 5),
)
def test_columnar_kcore_matches_the_reference(seqs, k):
    users = list(range(100, 100 + len(seqs)))
    assert kcore(users, seqs, k) == reference_kcore(users, seqs, k)
    data = D.kcore_filter(D.Interactions.from_sequences(users, seqs), k)
    assert data.flat.min(initial=1) >= 1 and data.flat.max(initial=0) <= data.n_items
    assert len(np.unique(data.flat)) == data.n_items  # renumbered: no item left without a row


def test_store_round_trip_memory_mapped(tmp_path):
    data = D.synthetic(40, 30, 3, seed=2)
    data.save(tmp_path / "store")
    back = D.Interactions.open(tmp_path / "store")
    assert isinstance(back.flat, np.memmap) and not back.flat.flags.writeable
    for key in ("flat", "offsets", "planted_intents"):
        np.testing.assert_array_equal(getattr(back, key), getattr(data, key))
    assert list(back.user_ids) == data.user_ids and list(back.item_ids) == data.item_ids
    users = np.repeat(np.arange(data.n_users), data.lengths)
    reference = np.unique(users * (data.n_items + 1) + data.flat)
    np.testing.assert_array_equal(data.touched_keys(), reference)
    np.testing.assert_array_equal(back.touched_keys(), reference)
    mixed = D.Interactions.from_sequences(["a", 2, "c"], [[1, 2], [2, 3], [1, 3]])
    mixed.save(tmp_path / "mixed")
    assert D.Interactions.open(tmp_path / "mixed").user_ids == ["a", 2, "c"]


def test_synthetic_is_deterministic_and_planted():
    a, b = D.synthetic(200, 120, 4, seed=5), D.synthetic(200, 120, 4, seed=5)
    assert np.array_equal(a.flat, b.flat) and np.array_equal(a.planted_intents, b.planted_intents)
    assert not np.array_equal(a.flat, D.synthetic(200, 120, 4, seed=6).flat)
    assert a.n_users == 200 and (a.lengths >= 5).all()
    assert set(np.unique(a.planted_intents)) <= set(range(4))


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


@pytest.fixture
def http_folder(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), partial(_Quiet, directory=served))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{server.server_address[1]}/{{name}}.txt"
    server.shutdown()


def test_benchmark_download_from_local_server(tmp_path, http_folder, monkeypatch):
    served, url = http_folder
    payload = b"1 1 2 3 4 5\n2 2 3 4 5 6\n"
    (served / "Beauty.txt").write_bytes(payload)
    monkeypatch.setitem(D.BENCHMARK_SHA256, "Beauty", hashlib.sha256(payload).hexdigest())
    target = tmp_path / "data"
    path = D.benchmark_path("beauty", str(target), url=url)
    assert path.read_bytes() == payload
    assert not list(target.glob(".*tmp"))  # nothing half-written left behind


def test_benchmark_download_checks_sha_and_reports_where_to_put_it(tmp_path, http_folder):
    served, url = http_folder
    (served / "Beauty.txt").write_bytes(b"not the file\n")
    with pytest.raises(D.DataError, match="sha256 does not match"):
        D.benchmark_path("beauty", str(tmp_path / "d"), url=url)
    assert not (tmp_path / "d" / "Beauty.txt").exists()
    with pytest.raises(D.DataError, match="Put Toys_and_Games.txt"):
        D.benchmark_path("toys", str(tmp_path / "d"), url=url)  # 404 on the server


def test_benchmark_on_disk_is_verified(tmp_path):
    (tmp_path / "Yelp.txt").write_text("1 2 3 4\n")
    with pytest.raises(D.DataError, match="does not match the published"):
        D.benchmark_path("yelp", str(tmp_path))


def test_real_beauty_statistics(beauty_dir):
    data = D.load(DataConfig(source="beauty", data_dir=beauty_dir))
    assert data.stats() == {
        "users": 22363,
        "items": 12101,
        "interactions": 198502,
        "avg_length": 8.88,
        "max_length": 204,
    }


# --------------------------------------------------------------------------- #
# Format detection and what a file that is not what it seems gets told
# --------------------------------------------------------------------------- #
@pytest.mark.parametrize(
    "name, text, expected",
    [
        ("a.txt", "1 5\n2 6\n1 7\n2 5\n", ("pairs", None)),  # users repeat
        ("a.txt", "1 5 6 7\n2 6 5\n3 5 7\n", ("sequences", None)),  # one line per user
        ("a.dat", "user,item,ts\n1,5,0\n", ("log", ",")),  # a header, whatever the suffix
        ("a.dat", "user\titem\tts\n1\t5\t0\n", ("log", "\t")),
        ("a.csv", "u,i,t\n", ("log", ",")),  # by suffix
        ("a.tsv", "u\ti\tt\n", ("log", "\t")),
    ],
)
def test_detect_format_from_a_sample_of_lines(tmp_path, name, text, expected):
    path = tmp_path / name
    path.write_text(text)
    assert D.detect_format(path) == expected


@pytest.mark.parametrize(
    "text, message",
    [
        ("1 5\n1 6 7\n", "user ids repeat"),  # repeats, but not two columns throughout
        ("a b\nc d\n", "considered sequences and pairs"),  # no integers, no header
    ],
)
def test_detect_format_says_what_it_considered_when_it_cannot_tell(tmp_path, text, message):
    path = tmp_path / "x.txt"
    path.write_text(text)
    with pytest.raises(D.DataError, match=message) as err:
        D.detect_format(path)
    assert "--format sequences|pairs|log" in str(err.value) and str(path) in str(err.value)


def test_a_pairs_file_loads_without_naming_its_format(tmp_path):
    path = tmp_path / "pairs.txt"
    path.write_text("7 1\n8 2\n7 2\n8 3\n7 3\n8 1\n9 1\n")
    cfg = DataConfig(source=str(path), drop_short_users=True)
    data = D.load(cfg)
    assert data.user_ids == [7, 8] and [list(data.sequence(u)) for u in range(2)] == [
        [1, 2, 3],
        [2, 3, 1],
    ]  # user 9 (one item) dropped; items in file order per user


def test_byte_order_mark_is_accepted_and_binary_files_are_named_with_an_offset(tmp_path):
    seq = tmp_path / "bom.txt"
    seq.write_bytes(b"\xef\xbb\xbf1 5 6 7\n2 6 5 7\n")
    assert D.read_sequences(seq) == ([1, 2], [[5, 6, 7], [6, 5, 7]])
    log = tmp_path / "bom.csv"
    log.write_bytes(b"\xef\xbb\xbfuser_id,item_id,timestamp\n1,5,0\n1,6,1\n1,7,2\n")
    assert as_lists(D.read_log(log)) == {1: [5, 6, 7]}
    binary = tmp_path / "model.txt"
    binary.write_bytes(b"1 5 6\n2 \xff\xfe 7\n")
    with pytest.raises(
        D.DataError, match=r"model.txt: not UTF-8 text \(byte 0xff at byte offset 8\)"
    ):
        D.load(DataConfig(source=str(binary)))
    gz = tmp_path / "log.csv"
    gz.write_bytes(b"\x1f\x8b\x08\x00\x00")
    with pytest.raises(
        D.DataError, match=r"log.csv: not a text file \(a NUL byte at byte offset 3\)"
    ):
        D.read_log(gz)


def test_a_csv_with_other_column_names_lists_the_columns_it_found(tmp_path):
    path = tmp_path / "clicks.csv"
    path.write_text("visitor,product,when\n1,5,0\n")
    with pytest.raises(D.DataError, match=r"found \['visitor', 'product', 'when'\]"):
        D.load(DataConfig(source=str(path)))
    cols = dict(user_col="visitor", item_col="product", time_col="when")
    path.write_text("visitor,product,when\n1,5,0\n1,6,1\n1,7,2\n")
    assert list(D.load(DataConfig(source=str(path), **cols)).user_ids) == [1]


def test_export_writes_a_log_that_loads_back_to_the_same_sequences(tmp_path):
    data = D.synthetic(50, 40, 3, seed=1)
    assert data.to_log(tmp_path / "clicks.csv") == int(data.lengths.sum())
    back = D.load(DataConfig(source=str(tmp_path / "clicks.csv")))
    assert list(back.user_ids) == data.user_ids
    for u in range(data.n_users):
        original = [data.item_ids[i - 1] for i in data.sequence(u)]
        assert [back.item_ids[i - 1] for i in back.sequence(u)] == original


def test_synthetic_log_at_scale_is_deterministic_and_planted(tmp_path):
    counts = D.write_synthetic_log(
        tmp_path / "a.parquet", 500, 300, 10, 12.0, seed=3, chunk_users=200
    )
    D.write_synthetic_log(tmp_path / "b.parquet", 500, 300, 10, 12.0, seed=3, chunk_users=200)
    a, b = pd.read_parquet(tmp_path / "a.parquet"), pd.read_parquet(tmp_path / "b.parquet")
    pd.testing.assert_frame_equal(a, b)
    assert counts["interactions"] == len(a) and a.user_id.nunique() == 500
    assert a.item_id.between(1, 300).all()
    assert (a.groupby("user_id").intent.nunique() == 1).all()  # one planted intent per user
    assert (a.groupby("user_id").size() >= 5).all()
    data = D.read_log(tmp_path / "a.parquet", chunk_rows=1000)
    assert data.n_users == 500 and int(data.lengths.sum()) == len(a)
    # popularity is skewed: the most frequent tenth of the items holds far more than a tenth
    top = np.sort(np.bincount(data.flat))[::-1]
    assert top[: data.n_items // 10].sum() > 0.3 * top.sum()
