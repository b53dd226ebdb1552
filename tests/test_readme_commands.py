"""The README's test command is exactly what CI runs (after lint), and the README opens with the main job."""

from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _commands() -> list[str]:
    lines = (REPO / "README.md").read_text().splitlines()
    return [lines[i + 1] for i, line in enumerate(lines) if line.strip() == "```bash"][:2]


def _ci_lines() -> list[str]:
    return [line.strip() for line in (REPO / ".ci" / "run").read_text().splitlines()]


def test_readme_opens_with_the_main_job_and_the_test_command():
    main_job, tests = _commands()
    assert "accelerate launch examples/run_semi_pose.py" in main_job
    assert "pytest" in tests


def test_ci_runs_the_readme_test_command():
    _, tests = _commands()
    ci_lines = _ci_lines()
    assert tests.strip() in ci_lines


def test_ci_lints_with_the_dev_extra_before_the_tests():
    _, tests = _commands()
    ci_lines = _ci_lines()
    assert "ruff check ." in ci_lines
    lint = ci_lines.index("ruff check .")
    assert 'pip install -e ".[dev]"' in ci_lines[:lint]
    assert lint < ci_lines.index(tests.strip())
