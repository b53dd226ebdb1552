"""The unsupervised weight schedule w(step): 0 through the burn-in, a linear ramp, then 1 (values by hand)."""

import pytest

from semipose.training import SemiPoseTrainingArguments


def _arguments(tmp_path, **overrides) -> SemiPoseTrainingArguments:
    return SemiPoseTrainingArguments(output_dir=str(tmp_path), report_to="none", use_cpu=True, **overrides)


def test_burn_in_ramp_and_plateau_from_the_ratios(tmp_path):
    # 1000 steps: burn-in 0.4 * 1000 = 400 steps, ramp 0.1 * 1000 = 100 steps, w = (step - 400) / 100.
    args = _arguments(tmp_path, max_steps=1000, burn_in_ratio=0.4, ramp_up_ratio=0.1)
    assert args.resolved_burn_in_steps(1000) == 400
    expected = {0: 0.0, 399: 0.0, 400: 0.0, 401: 0.01, 425: 0.25, 450: 0.5, 499: 0.99, 500: 1.0, 501: 1.0, 1000: 1.0}
    actual = {step: args.unsupervised_weight_factor(step) for step in expected}
    assert actual == pytest.approx(expected, abs=1e-12)


def test_burn_in_steps_override_the_ratio_and_max_steps_comes_from_the_run(tmp_path):
    # burn_in_steps=10 wins over the ratio; the ramp is 0.2 of the run's 50 steps = 10 steps.
    args = _arguments(tmp_path, max_steps=1000, burn_in_steps=10, burn_in_ratio=0.4, ramp_up_ratio=0.2)
    assert args.resolved_burn_in_steps(50) == 10
    expected = {9: 0.0, 10: 0.0, 13: 0.3, 15: 0.5, 20: 1.0, 49: 1.0}
    actual = {step: args.unsupervised_weight_factor(step, max_steps=50) for step in expected}
    assert actual == pytest.approx(expected, abs=1e-12)


def test_no_ramp_switches_the_unsupervised_terms_on_at_the_end_of_burn_in(tmp_path):
    args = _arguments(tmp_path, max_steps=100, burn_in_ratio=0.25, ramp_up_ratio=0.0)
    assert [args.unsupervised_weight_factor(step) for step in (0, 24, 25, 26)] == [0.0, 0.0, 1.0, 1.0]
