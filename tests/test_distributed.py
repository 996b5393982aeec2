"""Two gloo processes on CPU, half a batch each, compute one process's step
on the whole batch (benchmarks/ddp_equivalence.py holds the harness)."""

import pytest

from tests.helpers import script

ddp = script("ddp_equivalence")


@pytest.mark.parametrize("case", list(ddp.CASES))
def test_two_ranks_with_half_a_batch_equal_one_process_with_the_batch(case):
    result = ddp.compare(case)
    assert set(result["abs_loss_diff"]) == {"next_item", "cluster", "seq_cl", "intent_cl", "total"}
    assert result["max_abs_loss_diff"] <= ddp.TOLERANCE, result["abs_loss_diff"]
    assert result["max_abs_grad_diff"] <= ddp.TOLERANCE, result["worst_grad"]
    assert result["grads_only_one_side"] == [] and result["parameters_compared"] > 10


def test_a_gather_whose_backward_keeps_only_the_local_slice_is_caught():
    result = ddp.compare("bce_full", broken=True)
    assert result["max_abs_grad_diff"] > 100 * ddp.TOLERANCE


def test_ranks_sharing_the_users_rank_every_user_once_as_one_process_does():
    result = ddp.compare_evaluation()
    assert result["identical_ranks"] and result["users"] == 300
    per_rank = result["users_scored_per_rank"]
    assert sum(per_rank) == 300 and all(0 < n < 300 for n in per_rank)  # each its share
