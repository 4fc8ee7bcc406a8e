"""The scaling rules and the plan of a scaled model (`scaling`)."""

import pytest

from keras_efficientnets.arch.scaling import plan_model, round_filters, round_repeats
from keras_efficientnets.arch.variants import BlockArgs, get_default_block_list


@pytest.mark.parametrize(
    ("filters", "width", "expected"),
    [(16, 1.2, 24), (32, 1.1, 32), (1280, 2.0, 2560), (1280, 1.8, 2304), (320, 4.3, 1376), (3, 1.0, 8)],
)
def test_round_filters_follows_the_reference_rule(filters, width, expected):
    assert round_filters(filters, width) == expected


def test_round_filters_min_depth_is_the_floor():
    assert round_filters(3, 1.0, min_depth=16) == 16


def test_round_repeats_rounds_up():
    assert [round_repeats(r, 3.1) for r in (1, 2, 3, 4)] == [4, 7, 10, 13]


def test_drop_connect_schedule_runs_over_the_scaled_block_count():
    plan = plan_model(get_default_block_list(), 2.0, 3.1, drop_connect_rate=0.2)
    assert len(plan.blocks) == 55
    assert [b.drop_rate for b in plan.blocks] == [0.2 * i / 55 for i in range(55)]
    assert plan.head_filters == 2560


def test_lite_plan_keeps_stem_head_and_single_first_and_last_blocks():
    plan = plan_model(get_default_block_list(), 1.4, 1.8, fix_stem_and_head=True, use_se=False)
    names = [b.name for b in plan.blocks]
    assert (plan.stem_filters, plan.head_filters) == (32, 1280)
    assert names[0] == "block1a_" and names[1] == "block2a_" and names[-1] == "block7a_"
    assert all(b.args.se_ratio is None for b in plan.blocks)


def test_block_names_continue_past_z():
    stage = BlockArgs(8, 8, 3, 1, 28, None, 1)
    names = [b.name for b in plan_model([stage], 1.0, 1.0).blocks]
    assert names[25:] == ["block1z_", "block1aa_", "block1ab_"]
