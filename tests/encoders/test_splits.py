"""The held-out rule for encoder training: deterministic and about twenty percent."""

from __future__ import annotations

from recsys.encoders import (
    HoldoutRule,
)


def test_holdout_rule_is_deterministic_and_about_twenty_percent():
    rule = HoldoutRule()
    ids = [str(i) for i in range(5000)]
    splits = rule.splits(ids)
    assert list(rule.splits(ids[::-1]))[::-1] == list(splits)   # order does not matter
    share = (splits == "heldout").mean()
    assert 0.18 < share < 0.22
    assert 0.03 < (splits == "val").mean() < 0.05
    assert HoldoutRule(seed=1).splits(ids).tolist() != splits.tolist()
    assert HoldoutRule.from_dict(rule.to_dict()) == rule
