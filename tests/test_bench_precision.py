"""bench_precision's comparison: paired by seed, judged against fp32's seed spread, one store per precision."""

from benchmarks.bench_precision import cells, compare, markdown, precision_store


def _run(family, seed, ap, seconds=100.0):
    return {"family": family, "seed": seed, "seconds": seconds, "metrics": {"eval_AP": ap}}


def test_cells_are_the_main_jobs_default_setting_per_family_and_seed():
    names = [cell.name for cell in cells(["center_offset"], [0, 1])]
    assert names == ["center_offset-ratio_5-semi-light-seed0", "center_offset-ratio_5-semi-light-seed1"]


def test_bf16_is_judged_by_the_paired_difference_against_the_fp32_seed_spread():
    runs = {
        "fp32": [_run("center_offset", 0, 0.20), _run("center_offset", 1, 0.24),
                 _run("associative_embedding", 0, 0.30), _run("associative_embedding", 1, 0.31)],
        "bf16": [_run("center_offset", 0, 0.19, 60.0), _run("center_offset", 1, 0.21, 70.0),
                 _run("associative_embedding", 0, 0.27), _run("associative_embedding", 1, 0.29)],
    }
    rows = {row["family"]: row for row in compare(runs, ["center_offset", "associative_embedding"])}
    center = rows["center_offset"]
    assert round(center["bf16_minus_fp32"]["mean"], 6) == -0.02 and round(center["fp32_seed_spread"], 6) == 0.04
    assert center["bf16_keeps_accuracy"] and center["median_run_seconds"] == {"fp32": 100.0, "bf16": 65.0}
    embedding = rows["associative_embedding"]  # -0.025 mean drop against a 0.01 spread
    assert not embedding["bf16_keeps_accuracy"]
    assert "| associative_embedding | [0, 1] | 0.3050 | 0.2800 | -0.0250 [" in markdown(list(rows.values()), 500)


def test_a_family_without_paired_runs_is_left_out():
    runs = {"fp32": [_run("center_offset", 0, 0.2)], "bf16": [_run("center_offset", 1, 0.2)]}
    assert compare(runs, ["center_offset"]) == []


def test_each_precision_has_its_own_store(tmp_path):
    assert precision_store(tmp_path, 64, "fp32").folder != precision_store(tmp_path, 64, "bf16").folder
    assert precision_store(tmp_path, 64, "bf16").settings["extra_args"] == ["--precision", "bf16"]
