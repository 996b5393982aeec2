"""Leave-one-out split, batches, negatives and augmentations."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from elcrec.data import Interactions, Split, augment, right_aligned, synthetic


@pytest.fixture
def small():
    seqs = [[1, 2, 3, 4, 5, 6], [7, 8, 9], [2, 4, 6, 8, 10]]
    return Interactions.from_sequences([10, 11, 12], seqs)


def test_leave_one_out_by_hand(small):
    split = Split(small, max_len=4)
    users = np.arange(3)
    # batches are as wide as their longest row unless a width is asked for
    assert split.inputs(users, "train").tolist() == [[1, 2, 3], [0, 0, 0], [0, 2, 4]]
    assert split.inputs(users, "train", 4).tolist() == [[0, 1, 2, 3], [0, 0, 0, 0], [0, 0, 2, 4]]
    targets = split.train_targets(split.whole_samples(users), 4)
    assert targets.tolist() == [[0, 2, 3, 4], [0, 0, 0, 0], [0, 0, 4, 6]]
    assert split.inputs(users, "valid").tolist() == [[1, 2, 3, 4], [0, 0, 0, 7], [0, 2, 4, 6]]
    assert split.targets(users, "valid").tolist() == [5, 8, 8]
    # test input includes the validation item; truncated to the last max_len
    assert split.inputs(users, "test").tolist() == [[2, 3, 4, 5], [0, 0, 7, 8], [2, 4, 6, 8]]
    assert split.targets(users, "test").tolist() == [6, 9, 10]
    assert split.train_users.tolist() == [0, 2]  # user 1 has no training position


def test_no_validation_or_test_target_leaks_into_training():
    data = synthetic(400, 150, 4, seed=1)
    split = Split(data, max_len=50)
    users = np.arange(data.n_users)
    width = 50
    inputs = split.inputs(users, "train", width)
    targets = split.train_targets(split.whole_samples(users), width)
    for u in users:
        seq = data.sequence(u)
        # Training sees exactly positions 0..len-3 (inputs 0..len-4, targets 1..len-3).
        train_positions = np.concatenate([inputs[u][inputs[u] > 0], targets[u][targets[u] > 0]])
        assert set(train_positions.tolist()) <= set(seq[:-2].tolist())
        assert len(inputs[u][inputs[u] > 0]) == min(len(seq) - 3, 50)
        # and when the last two items never occur earlier, they never occur in training
        for held_out in seq[-2:]:
            if held_out not in seq[:-2]:
                assert held_out not in train_positions


def test_negatives_are_never_touched_items():
    data = synthetic(300, 60, 4, seed=2)  # small catalogue: many collisions to resample
    split = Split(data, 50)
    rng = np.random.default_rng(0)
    users = split.train_users[:200]
    targets = split.train_targets(split.whole_samples(users), 50)
    neg = split.sample_negatives(users, targets, rng)
    for row, u in enumerate(users):
        touched = set(data.sequence(u).tolist())
        for t, n in zip(targets[row], neg[row]):
            assert (n == 0) if t == 0 else (1 <= n <= data.n_items and n not in touched)


@pytest.mark.parametrize("kind", ["users", "prefixes", "window"])
def test_bucketed_batches_cover_every_training_sample_once(kind):
    data = synthetic(500, 100, 4, seed=0)
    split = Split(data, 50)
    expected = sorted(zip(*(a.tolist() for a in split.train_samples(kind))))
    for bucket in (0, 3):
        batches = split.train_batches(32, seed=1, epoch=4, bucket_batches=bucket, samples=kind)
        got = [(u, s, e) for b in batches for u, s, e in zip(*(a.tolist() for a in b))]
        assert sorted(got) == expected
        again = split.train_batches(32, seed=1, epoch=4, bucket_batches=bucket, samples=kind)
        assert all(np.array_equal(np.stack(a), np.stack(b)) for a, b in zip(batches, again))
    if kind == "users":
        assert sorted(u for u, _, _ in expected) == split.train_users.tolist()


def test_prefix_samples_by_hand(small):
    """RecBole's samples: one per training target, the items before it as the
    input (the last max_len of them), the loss at the last position only."""
    split = Split(small, max_len=2)
    samples = split.train_samples("prefixes")
    users = samples.users
    assert users.tolist() == [0, 0, 0, 2, 2]  # user 1 has no training target
    inputs = split.train_inputs(samples)
    assert inputs.tolist() == [[0, 1], [1, 2], [2, 3], [0, 2], [2, 4]]
    targets = split.train_targets(samples, 2, last_only=True)
    assert targets.tolist() == [[0, 2], [0, 3], [0, 4], [0, 4], [0, 6]]
    # one sample per user: its training input (the last max_len items), a
    # target at every position; the first target (item 2) falls out of the window
    samples = split.train_samples("users")
    assert split.train_inputs(samples).tolist() == [[2, 3], [2, 4]]
    assert split.train_targets(samples, 2).tolist() == [[3, 4], [4, 6]]


def test_window_samples_by_hand(small):
    """The released pipeline of FMLP-Rec and BSARec, max_len 2: the targets
    are each user's last 2 training items, each predicted from the items
    before it inside those 2, the first from nothing."""
    split = Split(small, max_len=2)
    samples = split.train_samples("window")
    users = samples.users
    # user 0 trains on items 1-4 and keeps 3, 4; user 1 on item 7 alone
    # (so it trains here, unlike with prefixes); user 2 on 2, 4, 6 and keeps 4, 6
    assert users.tolist() == [0, 0, 1, 2, 2]
    assert split.train_inputs(samples, 2).tolist() == [
        [0, 0],
        [0, 3],
        [0, 0],
        [0, 0],
        [0, 4],
    ]
    targets = split.train_targets(samples, 2, last_only=True)
    assert targets.tolist() == [[0, 3], [0, 4], [0, 7], [0, 4], [0, 6]]
    # the window cuts the input: from the user's first item instead, user 0's
    # last sample would see 2, 3
    assert samples.starts.tolist() == [2, 2, 6, 10, 10]
    uncut = samples._replace(starts=split.starts[users])
    assert split.train_inputs(uncut.take([1])).tolist() == [[2, 3]]
    # the views start at the window too: a crop or reorder of [] or [3]
    rng = np.random.default_rng(0)
    views = split.train_views(samples, rng, (0.5, 0.5, 0.5))
    assert set(views[[0, 2, 3]].ravel().tolist()) == {0}
    assert set(views[1].ravel().tolist()) <= {0, 3}


@settings(max_examples=25, deadline=None)
@given(
    seqs=st.lists(st.lists(st.integers(1, 9), min_size=3, max_size=14), min_size=1, max_size=6),
    max_len=st.integers(1, 6),
)
def test_window_samples_match_the_released_pipelines_slicing(seqs, max_len):
    """Against the pipeline written as plainly as it reads: per user, the last
    max_len items of seq[:-2]; one sample per prefix of them, its input the
    prefix without its last item, its target that item."""
    data = Interactions.from_sequences(list(range(len(seqs))), seqs)
    split = Split(data, max_len)
    expected = []
    for u in range(len(seqs)):
        kept = data.sequence(u).tolist()[:-2][-max_len:]  # (item ids as the data maps them)
        for i in range(len(kept)):
            expected.append((u, tuple(kept[:i]), kept[i]))
    samples = split.train_samples("window")
    users, ends = samples.users, samples.ends
    inputs = split.train_inputs(samples, max_len)
    got = [
        (int(u), tuple(x for x in row.tolist() if x), int(data.flat[e]))
        for u, row, e in zip(users, inputs, ends)
    ]
    assert sorted(got) == sorted(expected)


def test_same_target_partners_by_hand(small):
    """Training targets: user 0's items 2, 3, 4 (flat 1..3), user 2's 4, 6
    (flat 10, 11).  Only item 4 is the target of two samples."""
    split = Split(small, max_len=4)
    samples = split.train_samples("prefixes")
    ends = samples.ends
    rng = np.random.default_rng(0)
    for _ in range(5):
        p_users, p_ends = split.same_target_partners(ends, rng)
        assert p_users.tolist() == [0, 0, 2, 0, 2]
        assert p_ends.tolist() == [1, 2, 10, 3, 11]
    # the views: own inputs, and the partner's last items, as wide as the own
    own = split.train_inputs(samples.take([3, 4]))
    partner = split.same_target_inputs(ends[[3, 4]], rng, own.shape[1])
    assert own.tolist() == [[0, 2], [2, 4]]  # user 2's inputs before targets 4 and 6
    assert partner.tolist() == [[2, 3], [2, 4]]  # 4: user 0's [1, 2, 3], cut; 6: itself
    with pytest.raises(ValueError, match="not a training target"):
        split.same_target_partners(np.array([4]), rng)  # item 5 is user 0's validation target


def test_same_target_partners_are_other_training_samples_drawn_uniformly():
    data = synthetic(300, 40, 4, seed=3)  # small catalogue: large groups
    split = Split(data, 50)
    users, _, ends = split.train_samples("prefixes")
    training = set(zip(users.tolist(), ends.tolist()))
    flat = data.flat
    rng = np.random.default_rng(1)
    counts = np.bincount(flat[ends], minlength=data.n_items + 1)
    draws = [split.same_target_partners(ends, rng) for _ in range(200)]
    for p_users, p_ends in draws[:3]:
        assert (flat[p_ends] == flat[ends]).all()
        assert set(zip(p_users.tolist(), p_ends.tolist())) <= training
        assert ((p_ends != ends) == (counts[flat[ends]] > 1)).all()
    # item 9 is the target of three samples: each draws the two others evenly
    three = Interactions.from_sequences(
        [0, 1, 2], [[1, 9, 2, 3, 4], [5, 9, 6, 7, 8], [8, 9, 2, 1, 5]]
    )
    split = Split(three, 50)
    ends = np.array([1, 6, 11])  # the flat positions of the three 9s
    picks = np.stack([split.same_target_partners(ends, rng)[1] for _ in range(400)])
    for row, end in enumerate(ends):
        others = sorted(set(ends.tolist()) - {int(end)})
        assert sorted(set(picks[:, row].tolist())) == others
        assert abs((picks[:, row] == others[0]).mean() - 0.5) < 0.1


def test_right_aligned_keeps_last_items():
    flat = np.arange(1, 11)
    m = right_aligned(flat, np.array([0, 5, 9]), np.array([5, 9, 9]), max_len=3)
    assert m.tolist() == [[3, 4, 5], [7, 8, 9], [0, 0, 0]]


def _rows(m):
    return [row[row > 0].tolist() for row in m]


@settings(max_examples=40, deadline=None)
@given(st.lists(st.integers(1, 60), min_size=1, max_size=20), st.integers(0, 1000))
def test_augment_operators(lengths, seed):
    # distinct item ids so we can see where each item went
    seqs = [list(range(1000 * (i + 1), 1000 * (i + 1) + n)) for i, n in enumerate(lengths)]
    flat = np.concatenate([np.array(s) for s in seqs])
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    ends = starts + np.array(lengths)
    out = _rows(augment(flat, starts, ends, np.random.default_rng(seed), max_len=1000))
    for seq, view in zip(seqs, out):
        n = len(seq)
        crop_len = max(int(np.floor(0.2 * n)), 1)
        is_crop = len(view) == crop_len and any(
            view == seq[s : s + crop_len] for s in range(0, n - crop_len + 1)
        )
        is_mask = (
            len(view) == n - int(np.floor(0.7 * n))
            and all(x in seq for x in view)
            and view == sorted(view)
        )
        window = int(np.floor(0.2 * n))
        moved = [i for i, (a, b) in enumerate(zip(seq, view)) if a != b] if len(view) == n else None
        is_reorder = (
            moved is not None
            and sorted(view) == seq
            and (not moved or moved[-1] - moved[0] < window)
        )
        assert is_crop or is_mask or is_reorder, (seq, view)


def test_augment_uses_all_three_operators():
    flat = np.arange(1, 21)
    starts, ends = np.zeros(300, dtype=np.int64), np.full(300, 20)
    views = _rows(augment(flat, starts, ends, np.random.default_rng(0), max_len=50))
    lens = [len(v) for v in views]
    assert lens.count(4) > 60  # crop keeps 4 of 20
    assert lens.count(6) > 60  # mask hides 14 of 20
    assert lens.count(20) > 60  # reorder keeps all
