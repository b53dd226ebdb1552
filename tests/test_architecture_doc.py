"""docs/architecture.md names every module of the package in its layout, and every module it names exists."""

import re
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
PACKAGE_HEADING = re.compile(r"^(?:Library, )?`(semipose/(?:[a-z_]+/)*)`")


def _layout_tables() -> dict[str, set[str]]:
    """Package folder -> the module file names its layout table lists, e.g. "semipose/data/" -> {"collator.py", ...}."""
    tables, package = {}, None
    for line in (REPO / "docs" / "architecture.md").read_text().splitlines():
        heading = PACKAGE_HEADING.match(line)
        if heading:
            package = heading.group(1)
            tables[package] = set()
        elif package and line.startswith("| `"):
            tables[package].add(line.split("`")[1])
        elif line and not line.startswith("|"):
            package = None  # prose or a heading ends the table
    return tables


def test_every_module_is_listed_once_under_its_package():
    tables = _layout_tables()
    modules = sorted((REPO / "semipose").rglob("*.py"))
    missing = [str(path.relative_to(REPO)) for path in modules
               if path.name not in tables.get(f"{path.parent.relative_to(REPO)}/", set())]
    assert not missing, f"docs/architecture.md's layout lacks {missing}"


def test_every_listed_module_exists():
    listed = [f"{package}{name}" for package, names in _layout_tables().items() for name in names]
    assert len(listed) > 50
    assert [name for name in listed if not (REPO / name).is_file()] == []
