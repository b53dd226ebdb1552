"""bench_speed's bookkeeping: the job's step clock and how its gap to the isolated step is split."""

from benchmarks.bench_speed import StepClock, job_arguments, job_versus_step
from semipose.training.recipe import parse_arguments


def test_the_clock_times_steps_end_to_end_and_the_part_outside_them():
    clock = StepClock()
    clock.begins = [0.0, 1.0, 2.1, 3.3, 4.6]  # 0.8 s steps, 0.2 to 0.5 s between them
    clock.ends = [0.8, 1.8, 2.9, 4.1, 5.4]
    summary = clock.summary(warmup=1)
    assert summary["steps_timed"] == 3 and round(summary["step_seconds"], 6) == 1.2
    assert round(summary["outside_step_seconds"], 6) == 0.4


def test_the_gap_to_the_isolated_step_is_split_into_loader_and_step():
    split = job_versus_step({"step_seconds": 0.3, "outside_step_seconds": 0.05}, isolated_semi_seconds=0.2)
    assert split == {"job_over_isolated_step": 1.5, "gap_seconds": 0.1, "of_which_loader_and_logging_seconds": 0.05,
                     "of_which_inside_the_step_seconds": 0.05}


def test_the_job_measurement_is_the_main_jobs_semi_phase_with_its_defaults(tmp_path):
    _, _, training_args = parse_arguments(job_arguments("cache", str(tmp_path), 40))
    assert (training_args.max_steps, training_args.resolved_burn_in_steps(40), training_args.eval_strategy) == (
        40, 0, "no")
    assert (training_args.torch_threads, training_args.precision, training_args.dataloader_num_workers) == (
        "auto", "auto", 2)
