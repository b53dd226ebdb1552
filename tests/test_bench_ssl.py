"""bench_ssl's arithmetic: which supervised baseline counts, the gaps the README reports, the paired
confidence intervals, and the bookkeeping that lets a grid continue where it stopped."""

import argparse
import json
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest

from benchmarks import bench_ssl
from benchmarks.ssl_grid import estimate, paired, report, runner
from benchmarks.ssl_grid.cells import Cell, grid, main_job_command, pilot_cells, schedule
from benchmarks.ssl_grid.regimes import REGIMES
from benchmarks.ssl_grid.runner import evaluations, train_log
from benchmarks.ssl_grid.store import RunStore
from semipose.training.recipe import parse_arguments

RESULTS = Path(__file__).resolve().parents[1] / "benchmarks" / "results"
T_95_1 = 6.313751514675037  # Student t, 95th percentile: 1 degree of freedom (tables: 6.314)
T_95_2 = 2.919985580353724  # 2 degrees of freedom (tables: 2.920)


def fake_run(family, config, mode, augmentation, seed, ap, **bins):
    cell = Cell(family, config, mode, augmentation, seed)
    metrics = {"eval_AP": ap, **{f"eval_{name}": value for name, value in bins.items()}}
    return {**asdict(cell), "variant": cell.variant, "metrics": metrics}


def two_seed_runs():
    return [
        fake_run("center_offset", "ratio_5", "supervised", "light", 0, 0.10),
        fake_run("center_offset", "ratio_5", "supervised", "light", 1, 0.06),  # mean .08
        fake_run("center_offset", "ratio_5", "supervised", "strong", 0, 0.09),
        fake_run("center_offset", "ratio_5", "supervised", "strong", 1, 0.09),  # mean .09: best
        fake_run("center_offset", "ratio_5", "consistency", "light", 0, 0.11),
        fake_run("center_offset", "ratio_5", "consistency", "light", 1, 0.13),  # mean .12
        fake_run("center_offset", "ratio_5", "semi", "light", 0, 0.16),
        fake_run("center_offset", "ratio_5", "semi", "light", 1, 0.14),  # mean .15
        fake_run("center_offset", "full", "supervised", "light", 0, 0.30),
        fake_run("center_offset", "full", "supervised", "light", 1, 0.28),  # mean .29
    ]


def test_grid_has_every_cell_once_and_slow_runs_first():
    cells = grid(("center_offset", "associative_embedding"), ("ratio_5", "ratio_10"), [0, 1])
    assert len(cells) == len(set(cells)) == 2 * 2 * (2 * 4 + 1)
    modes = [cell.mode for cell in cells]
    assert modes.index("supervised") == modes.count("consistency") + modes.count("semi")
    one_ceiling = grid(("center_offset",), ("ratio_5",), [0, 1, 2], ceiling_seeds=[0])
    assert [cell.seed for cell in one_ceiling if cell.dataset_config == "full"] == [0] and len(one_ceiling) == 13


def test_the_crowd_grid_is_54_runs_and_the_pilot_is_supervised_5_and_100_percent():
    assert len(grid(bench_ssl.FAMILIES, bench_ssl.CONFIGS, bench_ssl.SEEDS)) == 2 * 2 * 4 * 3 + 2 * 3
    assert {(cell.dataset_config, cell.variant) for cell in pilot_cells(("center_offset",), [0])} == {
        ("ratio_5", "supervised (light)"), ("ratio_5", "supervised (strong)"), ("full", "supervised (light)")}


def test_best_supervised_is_chosen_by_mean_and_gaps_use_it():
    summary = report.summarize(two_seed_runs())
    assert summary[("center_offset", "ratio_5", "supervised (light)")]["spread"] == pytest.approx(0.04)
    (row,) = report.comparisons(summary, ("center_offset",), ("ratio_5",))
    assert row["best_supervised_augmentation"] == "strong"
    assert row["best_supervised"] == pytest.approx(0.09)
    assert row["label_bound_gap"] == pytest.approx(0.20)
    assert row["semi_minus_supervised"] == pytest.approx(0.06)
    assert row["semi_minus_consistency"] == pytest.approx(0.03)
    table = report.markdown_table(summary, [row], ("center_offset",), ("ratio_5",), steps=100)
    assert "| center_offset | 5% | 8.0 ± 4.0 (2) | 9.0 ± 0.0 (2) | 12.0 ± 2.0 (2) | 15.0 ± 2.0 (2) | 29.0 |" in table
    assert "| +20.0 | +6.0 | +3.0 |" in table


def test_comparisons_carry_paired_t_intervals_computed_by_hand():
    (row,) = report.comparisons(report.summarize(two_seed_runs()), ("center_offset",), ("ratio_5",))
    # semi - strong per seed: .16 - .09 = .07, .14 - .09 = .05; sd = .01 * sqrt(2), half = t(1) * sd / sqrt(2)
    assert row["paired"]["semi - supervised (strong)"]["differences"] == pytest.approx([0.07, 0.05])
    assert row["semi_minus_supervised_ci"] == pytest.approx([0.06 - T_95_1 * 0.01, 0.06 + T_95_1 * 0.01])
    # semi - consistency: .05 and .01, mean .03, sd .02 * sqrt(2), half = t(1) * .02
    assert row["semi_minus_consistency_ci"] == pytest.approx([0.03 - T_95_1 * 0.02, 0.03 + T_95_1 * 0.02])
    # semi - light: .06 and .08
    assert row["paired"]["semi - supervised (light)"]["mean"] == pytest.approx(0.07)
    # means reach the targets, but with 2 seeds the intervals reach below 0: not met
    assert row["targets_met"] == {"label_bound_gap": True, "semi_minus_supervised": False,
                                  "semi_minus_consistency": False, "hard_bin_gains_at_least_easy": None}
    table = report.markdown_table(report.summarize(two_seed_runs()), [row], ("center_offset",), ("ratio_5",), 100)
    assert "| +6.0 | +3.0 | [-0.3, +12.3] | [-9.6, +15.6] |" in table


def test_t_interval_of_1_2_3_by_hand():
    # mean 2, sd 1, n 3: 2 +- t(2) / sqrt(3)
    half = T_95_2 / math.sqrt(3)
    assert paired.t_interval([1.0, 2.0, 3.0]) == pytest.approx([2 - half, 2 + half])
    assert paired.t_interval([1.0, 2.0, 3.0]) == pytest.approx([0.314146, 3.685854], abs=1e-6)
    assert paired.t_interval([5.0]) is None


def test_paired_difference_pairs_by_seed_and_drops_unpaired_seeds():
    difference = paired.paired_difference({0: 0.3, 1: 0.5, 2: 0.4}, {0: 0.1, 2: 0.2, 3: 0.9})
    assert difference["seeds"] == [0, 2]
    assert difference["differences"] == pytest.approx([0.2, 0.2])
    assert difference["ci"] == pytest.approx([0.2, 0.2])  # no spread, no width
    assert paired.paired_difference({0: 0.3}, {1: 0.3}) is None


def test_the_hard_bin_gain_is_paired_per_seed():
    runs = []
    for seed, (semi_easy, semi_hard, consistency_easy, consistency_hard) in enumerate(
            [(0.30, 0.20, 0.28, 0.15), (0.32, 0.22, 0.31, 0.18), (0.29, 0.19, 0.27, 0.16)]):
        runs.append(fake_run("center_offset", "ratio_5", "semi", "light", seed, 0.2, **{
            "AP(E)": semi_easy, "AP(M)": 0.2, "AP(H)": semi_hard}))
        runs.append(fake_run("center_offset", "ratio_5", "consistency", "light", seed, 0.18, **{
            "AP(E)": consistency_easy, "AP(M)": 0.2, "AP(H)": consistency_hard}))
    (row,) = report.comparisons(report.summarize(runs), ("center_offset",), ("ratio_5",))
    # hard gains .05 .04 .03, easy gains .02 .01 .02 -> .03 .03 .01: mean 7/300, sd .011547
    hard_minus_easy = row["hard_gain_minus_easy_gain"]
    assert hard_minus_easy["differences"] == pytest.approx([0.03, 0.03, 0.01])
    half = T_95_2 * (0.02 / math.sqrt(3)) / math.sqrt(3)
    assert hard_minus_easy["ci"] == pytest.approx([0.07 / 3 - half, 0.07 / 3 + half])
    assert row["semi_minus_consistency_by_bin"]["AP(H)"]["mean"] == pytest.approx(0.04)
    assert row["targets_met"]["hard_bin_gains_at_least_easy"] is True
    assert row["targets_met"]["semi_minus_supervised"] is None  # no supervised runs
    bins = report.bins_table(report.summarize(runs), ("center_offset",), ("ratio_5",))
    assert "| center_offset | 5% | - | - | 28.7 / 20.0 / 16.3 | 30.3 / 20.0 / 20.3 |" in bins


def test_the_first_benchmarks_json_stays_readable():
    """The runs stored in bench_ssl.json give back the comparisons stored beside them."""
    stored = json.loads((RESULTS / "bench_ssl.json").read_text())
    families = list(dict.fromkeys(row["family"] for row in stored["comparisons"]))
    configs = list(dict.fromkeys(row["dataset_config"] for row in stored["comparisons"]))
    rows = report.comparisons(report.summarize(stored["runs"]), families, configs)
    for row, expected in zip(rows, stored["comparisons"], strict=True):
        assert row["best_supervised_augmentation"] == expected["best_supervised_augmentation"]
        for key in ("best_supervised", "ceiling", "label_bound_gap", "semi_minus_supervised",
                    "semi_minus_consistency"):
            assert row[key] == pytest.approx(expected[key])


def test_schedule_evaluates_from_the_burn_in_and_snapshots_its_end_and_the_ramp_end():
    plan = schedule(1000)  # burn-in 40%, ramp-up 10%: the main job's defaults
    assert (plan.burn_in_steps, plan.snapshot_steps, plan.save_steps, plan.eval_steps) == (400, (400, 500, 1000),
                                                                                            100, 200)
    assert plan.logging_steps == 50
    with pytest.raises(ValueError, match="--steps 1234"):
        schedule(1234)


def test_commands_parse_into_the_main_jobs_crowd_settings(tmp_path):
    plan = schedule(1000)
    flags = REGIMES["crowd"].main_job_flags(128)
    semi = main_job_command(Cell("associative_embedding", "ratio_10", "semi", "light", 2), plan, flags,
                            ["--learning_rate", "0.001"], "cache", tmp_path)
    model_args, data_args, training_args = parse_arguments(semi[2:])
    assert (model_args.input_size, data_args.synthetic_image_size) == (128, 128)
    assert (data_args.synthetic_min_people, data_args.synthetic_max_people) == (2, 6)
    assert (data_args.synthetic_min_height, data_args.synthetic_max_height) == (0.35, 0.8)
    assert (data_args.synthetic_num_train, data_args.synthetic_clutter) == (2000, 0.2)
    assert (training_args.eval_steps, training_args.eval_delay, training_args.save_steps) == (200, 400, 100)
    assert (training_args.seed, training_args.learning_rate) == (2, 1e-3)
    assert training_args.pseudo_person_threshold == 0.3  # the AE config's default
    assert (training_args.torch_threads, training_args.resolved_precision) == ("1", "fp32")  # GRID_NUMERICS
    bf16 = main_job_command(Cell("center_offset", "ratio_5", "semi", "light", 0), plan, flags,
                            ["--precision", "bf16"], "cache", tmp_path)
    assert parse_arguments(bf16[2:])[2].resolved_precision == "bf16"  # extra arguments come last and win
    supervised = main_job_command(Cell("center_offset", "full", "supervised", "strong", 0), plan, flags, [],
                                  "cache", tmp_path)
    _, data_args, training_args = parse_arguments(supervised[2:])
    assert (training_args.eval_strategy, training_args.save_steps) == ("no", 1000)
    assert (data_args.labeled_augmentation, data_args.dataset_config) == ("strong", "full")


def test_store_keeps_finished_runs_by_settings(tmp_path):
    cell = Cell("center_offset", "ratio_5", "semi", "light", 0)
    store = RunStore(tmp_path, {"regime": "crowd", "image_size": 96})
    assert store.load(cell, 100) is None
    store.save(cell, 100, {"seconds": 1.0})
    assert store.load(cell, 100) == {"seconds": 1.0}
    assert store.load(cell, 200) is None  # other steps, other run
    assert RunStore(tmp_path, {"regime": "crowd", "image_size": 96, "extra_args": ["--bf16"]}).load(cell, 100) is None
    assert json.loads((store.folder / "settings.json").read_text()) == {"regime": "crowd", "image_size": 96}
    assert sorted(path.name for path in store.folder.iterdir()) == sorted(["settings.json", store.path(cell, 100).name])
    store.path(cell, 300).write_text('{"seconds": ')  # cut off mid-write by hand
    with pytest.raises(ValueError, match="seed0-300steps.json"):
        store.load(cell, 300)


def test_a_rerun_trains_only_the_missing_cells(tmp_path, monkeypatch):
    trained = []

    def fake_run_cell(cell, plan, data_flags, extra_args, cache_dir, work_dir, readout):
        trained.append(cell)
        if cell.seed == 2:
            raise RuntimeError(f"{cell.name} failed")
        return {"seconds": 1.0}

    monkeypatch.setattr(runner, "run_cell", fake_run_cell)
    store = RunStore(tmp_path, {"image_size": 64, "data_flags": [], "extra_args": []})
    cells = [Cell("center_offset", "ratio_5", "semi", "light", seed) for seed in range(3)]
    store.save(cells[0], 100, {"seconds": 5.0})
    args = argparse.Namespace(jobs=2, cache_dir=str(tmp_path), main_job_args=[])
    finished = []
    failures = runner.train_pending([(store, cell) for cell in cells], 100, args, lambda: finished.append(1))
    assert sorted(cell.seed for cell in trained) == [1, 2]
    assert len(failures) == 1 and "seed2 failed" in failures[0] and len(finished) == 1
    assert [run["seconds"] for run in store.finished(cells, 100)] == [5.0, 1.0]


def test_stores_sharing_a_cell_train_it_in_different_folders(tmp_path, monkeypatch):
    """bench_precision's fp32 and bf16 stores hold the same cells; side by side, a shared folder was deleted
    under the running job by the other's start."""
    folders = []
    monkeypatch.setattr(runner, "run_cell", lambda *arguments: folders.append(arguments[-2]) or {"seconds": 1.0})
    cell = Cell("center_offset", "ratio_5", "semi", "light", 0)
    stores = [RunStore(tmp_path, {"image_size": 64, "data_flags": [], "extra_args": ["--precision", precision]})
              for precision in ("fp32", "bf16")]
    args = argparse.Namespace(jobs=2, cache_dir=str(tmp_path), main_job_args=[])
    runner.train_pending([(store, cell) for store in stores], 100, args, lambda: None)
    assert len(set(folders)) == 2


def test_diagnostics_keep_loss_terms_and_evaluations():
    history = [
        {"step": 10, "loss": 0.5, "learning_rate": 1e-3, "grad_norm": 2.0, "train/loss": 0.4,
         "train/pseudo_loss": 0.123456, "epoch": 0.1},
        {"step": 10, "eval_AP": 0.25, "eval_teacher_AP": 0.3, "eval_pseudo_precision": 0.8, "eval_AR": 0.4},
        {"step": 20, "train_runtime": 12.0},
    ]
    assert train_log(history) == [{"step": 10, "loss": 0.5, "learning_rate": 1e-3, "train/loss": 0.4,
                                   "train/pseudo_loss": 0.1235}]
    assert evaluations(history) == [{"step": 10, "eval_AP": 0.25, "eval_teacher_AP": 0.3,
                                     "eval_pseudo_precision": 0.8}]
    run = {"steps": 100, "diagnostics": {"train_log": [
        {"step": 70, "train/loss": 1.0, "train/pseudo_loss": 9.0},
        {"step": 80, "train/loss": 0.5, "train/pseudo_loss": 0.1, "train/consistency_loss": 0.05},
        {"step": 100, "train/loss": 0.5, "train/pseudo_loss": 0.3, "train/consistency_loss": 0.15},
    ]}}
    assert report._late_loss_ratios(run) == pytest.approx({"pseudo": 0.4, "consistency": 0.2})


def test_pilot_picks_the_smallest_size_where_every_family_is_label_bound():
    def summary(gaps):
        runs = []
        for family, gap in gaps.items():
            runs += [fake_run(family, "ratio_5", "supervised", "light", 0, 0.10),
                     fake_run(family, "ratio_5", "supervised", "strong", 0, 0.12),
                     fake_run(family, "full", "supervised", "light", 0, 0.12 + gap)]
        return report.summarize(runs)

    families = ("center_offset", "associative_embedding")
    rows = report.pilot_rows({96: summary({"center_offset": 0.2, "associative_embedding": 0.1}),
                              128: summary({"center_offset": 0.25, "associative_embedding": 0.16})}, families)
    assert [(row["image_size"], row["label_bound"]) for row in rows] == [(96, True), (96, False), (128, True),
                                                                         (128, True)]
    assert rows[1]["label_bound_gap"] == pytest.approx(0.1)  # against the better 5% run (strong)
    assert report.chosen_image_size(rows) == 128
    assert report.chosen_image_size(rows[:2]) is None


def test_estimate_fits_fixed_and_per_step_seconds_and_prefers_finished_runs():
    timing = estimate.fit_timing({("co", "semi", 30): 100.0, ("co", "semi", 60): 130.0,
                                  ("co", "supervised", 30): 40.0, ("co", "supervised", 60): 55.0})
    assert timing == {"co": {"semi": {"fixed_seconds": 70.0, "seconds_per_step": 1.0},
                             "supervised": {"fixed_seconds": 25.0, "seconds_per_step": 0.5}}}
    cells = [Cell("co", "ratio_5", "consistency", "light", 0), Cell("co", "full", "supervised", "light", 0),
             Cell("ae", "ratio_5", "semi", "light", 0)]
    finished = [{**asdict(Cell("co", "ratio_10", "supervised", "strong", 1)), "seconds": 300.0}]
    assert estimate.estimate_seconds(cells, 1000, timing, finished) == [1070.0, 300.0, None]
    assert estimate.makespan([5, 3, 3, 1], jobs=2) == 6  # 5 | 3 + 3 ... the 1 joins the first free worker


def test_pseudo_label_curves_are_split_by_crowd_bin():
    from benchmarks.ssl_grid.teacher_readout import CURVE_THRESHOLDS, pseudo_label_curves
    from semipose.evaluation import ground_truth_from_rows

    person = np.zeros((1, 14, 3))
    person[0, :, 0], person[0, :, 1], person[0, :, 2] = np.linspace(10, 30, 14), np.linspace(5, 45, 14), 2
    rows = [{"image_id": image_id, "keypoints": person.tolist(), "bboxes": [[10, 5, 20, 40]], "crowd_index": crowd}
            for image_id, crowd in ((1, 0.1), (2, 0.5), (3, 0.9))]
    ground_truth = ground_truth_from_rows(rows, "crowdpose")
    found = person.copy()
    found[..., 2] = 1.0  # keypoint scores
    people = [(1, found, np.array([0.9])), (2, found, np.array([0.5])), (3, np.zeros((0, 14, 3)), np.zeros(0))]
    curves = pseudo_label_curves(ground_truth, people, "crowdpose", keypoint_threshold=0.3)
    at = {threshold: index for index, threshold in enumerate(CURVE_THRESHOLDS)}
    assert (curves["all"][at[0.5]]["precision"], curves["all"][at[0.5]]["recall"]) == (1.0, round(2 / 3, 4))
    assert (curves["all"][at[0.6]]["precision"], curves["all"][at[0.6]]["recall"]) == (1.0, round(1 / 3, 4))
    assert [curves["medium"][at[t]]["recall"] for t in (0.5, 0.6)] == [1.0, 0.0]
    assert curves["easy"][at[0.6]]["recall"] == 1.0
    assert (curves["hard"][0]["precision"], curves["hard"][0]["recall"]) == (0.0, 0.0)


def test_validation_is_described_per_crowd_bin(tmp_path):
    from benchmarks.ssl_grid.regimes import describe_validation
    from semipose.data.synthetic import SyntheticConfig, generate_scene, prepare_synthetic_dataset

    config = SyntheticConfig(image_size=32, people=(2, 4), skeleton="crowdpose", num_train=4, num_val=12)
    folder = prepare_synthetic_dataset(tmp_path / "data", config, show_progress=False)
    scenes = [generate_scene(config, "val", index) for index in range(12)]
    crowd = np.array([scene.crowd_index for scene in scenes])
    expected = {"easy": int((crowd < 0.2).sum()), "medium": int(((crowd >= 0.2) & (crowd < 0.8)).sum()),
                "hard": int((crowd >= 0.8).sum())}
    described = describe_validation(folder)
    assert described["images"] == 12 and described["images_per_crowd_bin"] == expected
    people = sum(int((scene.areas > 0).sum()) for scene in scenes)  # figures with pixels in the frame
    assert described["people_per_image"] == round(people / 12, 3)


@pytest.mark.parametrize("module", ["cells", "regimes", "estimate", "paired"])
def test_docstring_examples_run(module):
    import doctest
    import importlib

    results = doctest.testmod(importlib.import_module(f"benchmarks.ssl_grid.{module}"))
    assert results.attempted > 0 and results.failed == 0
