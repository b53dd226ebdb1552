"""bench_ssl's arithmetic: which supervised baseline counts, and the gaps the README reports."""

import importlib
from dataclasses import asdict

import pytest


@pytest.fixture(scope="module")
def bench_ssl():
    return importlib.import_module("benchmarks.bench_ssl")


def fake_run(bench_ssl, family, config, mode, augmentation, seed, ap):
    cell = bench_ssl.Cell(family, config, mode, augmentation, seed)
    return {**asdict(cell), "variant": cell.variant, "metrics": {"eval_AP": ap}}


def test_grid_has_every_cell_once_and_slow_runs_first(bench_ssl):
    cells = bench_ssl.grid(("center_offset", "associative_embedding"), ("ratio_5", "ratio_10"), [0, 1])
    assert len(cells) == len(set(cells)) == 2 * 2 * (2 * 4 + 1)
    modes = [cell.mode for cell in cells]
    assert modes.index("supervised") == modes.count("consistency") + modes.count("semi")


def test_best_supervised_is_chosen_by_mean_and_gaps_use_it(bench_ssl):
    runs = [
        fake_run(bench_ssl, "center_offset", "ratio_5", "supervised", "light", 0, 0.10),
        fake_run(bench_ssl, "center_offset", "ratio_5", "supervised", "light", 1, 0.06),  # mean .08
        fake_run(bench_ssl, "center_offset", "ratio_5", "supervised", "strong", 0, 0.09),
        fake_run(bench_ssl, "center_offset", "ratio_5", "supervised", "strong", 1, 0.09),  # mean .09: best
        fake_run(bench_ssl, "center_offset", "ratio_5", "consistency", "light", 0, 0.11),
        fake_run(bench_ssl, "center_offset", "ratio_5", "consistency", "light", 1, 0.13),  # mean .12
        fake_run(bench_ssl, "center_offset", "ratio_5", "semi", "light", 0, 0.16),
        fake_run(bench_ssl, "center_offset", "ratio_5", "semi", "light", 1, 0.14),  # mean .15
        fake_run(bench_ssl, "center_offset", "full", "supervised", "light", 0, 0.30),
        fake_run(bench_ssl, "center_offset", "full", "supervised", "light", 1, 0.28),  # mean .29
    ]
    summary = bench_ssl.summarize(runs)
    assert summary[("center_offset", "ratio_5", "supervised (light)")]["spread"] == pytest.approx(0.04)
    (row,) = bench_ssl.comparisons(summary, ("center_offset",), ("ratio_5",))
    assert row["best_supervised_augmentation"] == "strong"
    assert row["best_supervised"] == pytest.approx(0.09)
    assert row["label_bound_gap"] == pytest.approx(0.20)
    assert row["semi_minus_supervised"] == pytest.approx(0.06)
    assert row["semi_minus_consistency"] == pytest.approx(0.03)
    table = bench_ssl.markdown_table(summary, [row], ("center_offset",), ("ratio_5",), steps=100)
    assert "| center_offset | 5% | 8.0 ± 4.0 (2) | 9.0 ± 0.0 (2) | 12.0 ± 2.0 (2) | 15.0 ± 2.0 (2) | 29.0 |" in table
    assert "| +20.0 | +6.0 | +3.0 |" in table
