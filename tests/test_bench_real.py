"""The real-footage benchmark's fixed split and its verdict arithmetic (hand-computed), on the mirror-mouse fixture."""

import pytest

from benchmarks.bench_real import FIXTURE, VALIDATION_FRAMES, comparisons, summarize, validation_frames

pytestmark = pytest.mark.skipif(not FIXTURE.is_dir(), reason="needs ../shared/fixtures/mirror-mouse")


def _run(variant: str, seed: int, rmse: float, config: str = "labeled_10") -> dict:
    mode, _, augmentation = variant.partition(" (")
    return {"family": "center_offset", "dataset_config": config, "variant": variant, "mode": mode,
            "augmentation": augmentation.rstrip(")") or "light", "seed": seed,
            "metrics": {"eval_pixel_rmse": rmse, "eval_pixel_median": rmse / 2, "eval_pck": 0.5, "eval_AP": 0.1}}


def test_the_validation_frames_are_a_fixed_seeded_draw_of_the_csv_frames():
    frames = validation_frames(FIXTURE / "CollectedData.csv")
    assert len(set(frames)) == VALIDATION_FRAMES and frames == validation_frames(FIXTURE / "CollectedData.csv")
    assert all((FIXTURE / frame).is_file() for frame in frames)


def test_semi_is_judged_by_its_relative_rmse_reduction_against_each_baseline_per_seed():
    rmse = {"semi": (8.0, 9.0, 7.0), "supervised (light)": (10.0, 10.0, 10.0),
            "supervised (strong)": (16.0, 18.0, 14.0), "consistency": (8.0, 9.0, 7.0)}
    runs = [_run(variant, seed, values[seed]) for variant, values in rmse.items() for seed in range(3)]
    summary = summarize(runs)
    assert summary[("center_offset", "labeled_10", "semi")]["eval_pixel_rmse"] == {"mean": 8.0, "sd": 1.0}
    row = comparisons(summary, ["center_offset"], ["labeled_10"])[0]
    light = row["reductions"]["supervised (light)"]
    assert light["differences"] == pytest.approx([0.2, 0.1, 0.3]) and light["mean"] == pytest.approx(0.2)
    assert light["ci"][0] == pytest.approx(0.2 - 2.919986 * 0.1 / 3 ** 0.5, abs=1e-6)  # t(0.95, 2) sd / sqrt(3)
    assert row["reductions"]["supervised (strong)"]["mean"] == pytest.approx(0.5)
    assert row["best_supervised"] == "supervised (light)"
    # a mean 20% >= the 15% target against both, light's interval above 0 (lower bound 0.031)
    assert row["targets_met"] == {"semi_vs_best_supervised": True, "semi_vs_consistency": True}


def test_a_target_is_unknown_until_every_baseline_has_two_seeds():
    runs = [_run("semi", 0, 8.0), _run("supervised (light)", 0, 10.0), _run("supervised (strong)", 0, 12.0)]
    row = comparisons(summarize(runs), ["center_offset"], ["labeled_10"])[0]
    assert row["targets_met"] == {"semi_vs_best_supervised": None, "semi_vs_consistency": None}
