"""Read DeepLabCut / Lightning Pose labeled-frame CSV files into the COCO dicts of a semipose dataset folder.

Command (the Lightning Pose example project: one CollectedData.csv, images under labeled-data/):

    python datasets_scripts/prepare_dlc.py --csv mirror-mouse/CollectedData.csv --output data/mirror_mouse_semi

A DeepLabCut project labels each video folder in its own file; convert them together (the body parts must agree)
and take the limbs from the project's config:

    python datasets_scripts/prepare_dlc.py --csv project/labeled-data/*/CollectedData_*.csv \
        --dlc-config project/config.yaml --output data/project_semi

The CSV layout (pandas' `to_csv` of DeepLabCut's data frame):

- header rows `scorer`, `bodyparts`, `coords` (single animal, Lightning Pose) or `scorer`, `individuals`,
  `bodyparts`, `coords` (multi-animal DeepLabCut), told apart by the first cell of each row;
- the image path in the leading index column(s): one column (`labeled-data/video/img.png`) or DeepLabCut 2.3's
  three (`labeled-data`, `video`, `img.png`); their number is the position of the first `x` of the coords row;
- per body part (and individual) the coords `x`, `y` and, in machine-labeled files, `likelihood` (ignored);
  an empty cell is an unlabeled keypoint.

Decisions:

- Image paths are relative to the project folder (`project_dir`; default: the CSV's folder or the first of its
  parents that holds the image of its first row) and the images stay there: the dataset's `file_name`s are those
  paths. Coordinates are kept as they are: DeepLabCut's labeling tools place integer coordinates at pixel
  centers, the convention of `semipose.skeletons`.
- Multi-animal DeepLabCut's individual `single` holds the unique body parts (arena landmarks and the like), which
  are not part of any animal: its columns are dropped with a logged warning.
- An individual without a labeled keypoint in a row is not an instance of that image; a row without any is an
  image with no animal (a negative), kept.
- A file that names no validation split (DeepLabCut keeps its own in pickles, not in the CSV) gets a seeded hold-out
  (`semipose.data.label_conversion.hold_out_validation`).
"""

from __future__ import annotations

import csv
import logging
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path, PureWindowsPath
from typing import Any

import numpy as np
import yaml

from ..skeletons import Skeleton, resolve_skeleton
from .coco_format import read_image_size
from .label_conversion import (
    DEFAULT_VAL_FRACTION,
    ConvertedLabels,
    LabeledImage,
    convert_labels,
    keypoints_from_xy,
)

logger = logging.getLogger(__name__)

COORDS = ("x", "y", "likelihood")
"""The coords a DeepLabCut CSV may hold per body part; `likelihood` (of machine labels) is ignored."""
SINGLE_INDIVIDUAL = "single"
"""Multi-animal DeepLabCut's pseudo-individual of the unique body parts; its columns are dropped."""
_SINGLE_ANIMAL_HEADER = ("scorer", "bodyparts", "coords")
_MULTI_ANIMAL_HEADER = ("scorer", "individuals", "bodyparts", "coords")


@dataclass(frozen=True)
class DlcTable:
    """The labels of one CSV file. N rows, I individuals (one, named "", for a single-animal file), K body parts.

    Attributes:
        file: the CSV file.
        bodyparts: K names, in the file's column order.
        individuals: I names.
        images: N image paths as the file writes them (index columns joined by `/`).
        lines: N 1-based line numbers of the rows, for error messages.
        xy: `[N, I, K, 2]` coordinates, NaN where unlabeled.
    """

    file: Path
    bodyparts: tuple[str, ...]
    individuals: tuple[str, ...]
    images: tuple[str, ...]
    lines: tuple[int, ...]
    xy: np.ndarray


def read_dlc_csv(file: str | Path) -> DlcTable:
    """Read and check one DeepLabCut / Lightning Pose CSV file (layout in the module docstring).

    Raises:
        FileNotFoundError: the file does not exist.
        ValueError: header rows of neither layout, a row with the wrong number of cells, a coordinate that is not a
            number, a keypoint with only one of x and y, a body part without x or y: naming the file, the 1-based
            line and what was expected.

    Illustration (not run: needs the shared fixtures beside the repository):

    ```python
    table = read_dlc_csv("../shared/fixtures/mirror-mouse/CollectedData.csv")
    table.xy.shape, table.images[0], table.bodyparts[0]  # (90, 1, 17, 2), 'labeled-data/img01.png', 'paw1LH_top'
    ```
    """
    file = Path(file)
    if not file.is_file():
        raise FileNotFoundError(f"DeepLabCut CSV file {file} does not exist.")
    rows = _csv_rows(file)
    header = _header(rows, file)
    layout = _layout(header, file)
    data = rows[len(header):]
    if not data:
        raise ValueError(f"{file}: no labeled rows after the {len(header)} header rows; expected one row per image.")
    images = tuple(_image_path(row, layout.num_index, file) for row in data)
    xy = np.stack([_row_xy(row, layout, file) for row in data])
    return DlcTable(file, layout.bodyparts, layout.individuals, images, tuple(line for line, _ in data), xy)


@dataclass(frozen=True)
class _Layout:
    """What the header says: the cells per row, the image path's columns and each keypoint's x and y columns."""

    width: int
    num_index: int
    individuals: tuple[str, ...]
    bodyparts: tuple[str, ...]
    columns: dict[tuple[str, str], dict[str, int]]


def _layout(header: list[tuple[int, list[str]]], file: Path) -> _Layout:
    num_index = _num_index_columns(header[-1], file)
    columns = _value_columns(header, num_index, file)
    individuals = tuple(dict.fromkeys(individual for individual, _ in columns))
    bodyparts = _bodyparts(columns, individuals, header, file)
    return _Layout(len(header[-1][1]), num_index, individuals, bodyparts, columns)


def _csv_rows(file: Path) -> list[tuple[int, list[str]]]:
    """(1-based line, cells) of each row that has a non-empty cell."""
    try:
        with file.open(newline="", encoding="utf-8-sig") as handle:
            reader = csv.reader(handle)
            rows = [(reader.line_num, cells) for cells in reader]
    except (UnicodeDecodeError, csv.Error) as error:
        raise ValueError(f"{file}: not a readable CSV file ({error}).") from error
    return [(line, cells) for line, cells in rows if any(cell.strip() for cell in cells)]


def _header(rows: list[tuple[int, list[str]]], file: Path) -> list[tuple[int, list[str]]]:
    """The 3 (single-animal) or 4 (multi-animal) header rows, told apart by their first cells."""
    firsts = [cells[0].strip().lower() for _, cells in rows[:4]]
    layout = _MULTI_ANIMAL_HEADER if firsts[1:2] == ["individuals"] else _SINGLE_ANIMAL_HEADER
    for position, expected in enumerate(layout):
        if position >= len(rows):
            raise ValueError(f"{file}: ends after {len(rows)} rows; expected the header rows {list(layout)}.")
        if firsts[position] != expected:
            line, cells = rows[position]
            choices = "'bodyparts' or 'individuals'" if position == 1 else repr(expected)
            raise ValueError(
                f"{file} line {line}: header row starts with {cells[0]!r}, expected {choices} (DeepLabCut's header "
                "rows: scorer, bodyparts, coords; or scorer, individuals, bodyparts, coords)."
            )
    header = rows[:len(layout)]
    width = len(header[0][1])
    for line, cells in header:
        if len(cells) != width:
            raise ValueError(f"{file} line {line}: header row has {len(cells)} cells, expected {width} (as the "
                             f"scorer row, line {header[0][0]}).")
    return header


def _num_index_columns(coords_row: tuple[int, list[str]], file: Path) -> int:
    """The image path's columns: those before the first `x` of the coords row."""
    line, cells = coords_row
    names = [cell.strip() for cell in cells]
    if "x" not in names[1:]:
        raise ValueError(f"{file} line {line}: the coords row has no 'x' after the index column(s); expected "
                         f"x, y (and likelihood) per body part, got {names[:8]}.")
    return names.index("x", 1)


def _value_columns(
    header: list[tuple[int, list[str]]], num_index: int, file: Path
) -> dict[tuple[str, str], dict[str, int]]:
    """(individual, body part) -> {coord: column}; `single` dropped, x and y required, likelihood ignored."""
    (coords_line, coords), (_, bodyparts) = header[-1], header[-2]
    individuals = header[1][1] if len(header) == 4 else [""] * len(coords)
    columns: dict[tuple[str, str], dict[str, int]] = {}
    for column in range(num_index, len(coords)):
        coord, key = coords[column].strip(), (individuals[column].strip(), bodyparts[column].strip())
        if coord not in COORDS or not key[1]:
            raise ValueError(f"{file} line {coords_line}, column {column + 1}: coord {coord!r} of body part "
                             f"{key[1]!r}; expected a named body part with coords {list(COORDS)}.")
        if coord in columns.setdefault(key, {}):
            raise ValueError(f"{file} line {coords_line}, column {column + 1}: a second {coord!r} of {_name(key)}.")
        columns[key][coord] = column
    _drop_single(columns, file)
    for key, coords_of in columns.items():
        if not {"x", "y"} <= set(coords_of):
            raise ValueError(f"{file} line {coords_line}: {_name(key)} has coords {sorted(coords_of)}, expected "
                             "both x and y.")
    return columns


def _name(key: tuple[str, str]) -> str:
    individual, bodypart = key
    return f"body part {bodypart!r}" + (f" of individual {individual!r}" if individual else "")


def _drop_single(columns: dict[tuple[str, str], dict[str, int]], file: Path) -> None:
    single = [bodypart for individual, bodypart in columns if individual == SINGLE_INDIVIDUAL]
    if single:
        logger.warning("%s: dropping the unique body parts %s of the individual %r: they belong to no animal.",
                       file, single, SINGLE_INDIVIDUAL)
    for bodypart in single:
        del columns[(SINGLE_INDIVIDUAL, bodypart)]


def _bodyparts(
    columns: dict[tuple[str, str], dict[str, int]], individuals: tuple[str, ...],
    header: list[tuple[int, list[str]]], file: Path,
) -> tuple[str, ...]:
    """The first individual's body parts; every individual must have the same."""
    if not individuals:
        raise ValueError(f"{file}: no body part columns besides the individual {SINGLE_INDIVIDUAL!r}; expected "
                         "the animals' body parts.")
    per_individual = {name: tuple(part for who, part in columns if who == name) for name in individuals}
    first = per_individual[individuals[0]]
    for name, parts in per_individual.items():
        if set(parts) != set(first):
            raise ValueError(f"{file} line {header[-2][0]}: individual {name!r} has the body parts {list(parts)}, "
                             f"but {individuals[0]!r} has {list(first)}; expected the same for every individual.")
    return first


def _image_path(row: tuple[int, list[str]], num_index: int, file: Path) -> str:
    """The index cells joined by `/`, Windows separators turned into `/`."""
    line, cells = row
    parts = [cell.strip() for cell in cells[:num_index] if cell.strip()]
    if not parts:
        raise ValueError(f"{file} line {line}: no image path in the first {num_index} column(s).")
    return "/".join(PureWindowsPath(part).as_posix() for part in parts)


def _row_xy(row: tuple[int, list[str]], layout: _Layout, file: Path) -> np.ndarray:
    """`[I, K, 2]` coordinates of one row, NaN where unlabeled."""
    line, cells = row
    if len(cells) != layout.width:
        raise ValueError(f"{file} line {line}: {len(cells)} cells, expected {layout.width} as the header "
                         f"({layout.num_index} for the image path, then the coords of each body part).")
    xy = np.full((len(layout.individuals), len(layout.bodyparts), 2), np.nan)
    for i, individual in enumerate(layout.individuals):
        for k, bodypart in enumerate(layout.bodyparts):
            coords = layout.columns[(individual, bodypart)]
            where = f"{file} line {line}: {_name((individual, bodypart))}"
            xy[i, k] = [_coordinate(cells[coords[axis]], where, axis) for axis in ("x", "y")]
            if np.isnan(xy[i, k]).sum() == 1:
                raise ValueError(f"{where} has one of x and y but not the other ({xy[i, k].tolist()}); expected "
                                 "both, or neither for an unlabeled keypoint.")
    return xy


def _coordinate(cell: str, where: str, axis: str) -> float:
    """A cell as a number; empty (or `nan`) is NaN, an unlabeled keypoint."""
    cell = cell.strip()
    if not cell or cell.lower() == "nan":
        return math.nan
    try:
        value = float(cell)
    except ValueError:
        value = math.inf
    if not math.isfinite(value):
        raise ValueError(f"{where}: {axis} is {cell!r}, expected a finite number (or an empty cell: unlabeled).")
    return value


def find_project_dir(table: DlcTable) -> Path:
    """The CSV's folder or the first of its parents where the image of the first row exists."""
    folder = table.file.resolve().parent
    for candidate in (folder, *folder.parents):
        if (candidate / table.images[0]).is_file():
            return candidate
    raise FileNotFoundError(
        f"{table.file} line {table.lines[0]}: its image {table.images[0]} is under neither the CSV's folder {folder} "
        "nor any of its parents; pass the project folder the image paths are relative to (--project-dir)."
    )


def dlc_skeleton(
    bodyparts: Sequence[str], name: str, *, skeleton: str | Path | Skeleton | None = None,
    dlc_config: str | Path | None = None, source: str = "labels",
) -> Skeleton:
    """The skeleton of the CSV's body parts: a given skeleton (whose keypoints must be exactly those body parts),
    else the names with the limbs of a DeepLabCut `config.yaml` (if given) and flip pairs inferred from the names.

    Example:

    ```python
    >>> dlc_skeleton(["nose", "left_ear", "right_ear"], "mouse").flip_index
    (0, 2, 1)

    ```
    """
    if skeleton is not None:
        skeleton = resolve_skeleton(skeleton)
        _check_same_parts(skeleton.keypoint_names, bodyparts, f"the skeleton {skeleton.name!r}", source)
        return skeleton
    limbs = [] if dlc_config is None else _config_limbs(read_dlc_config(dlc_config), bodyparts, Path(dlc_config))
    return Skeleton.from_dict({"name": name, "keypoints": list(bodyparts), "limbs": limbs}, source)


def _check_same_parts(names: Sequence[str], bodyparts: Sequence[str], what: str, source: str) -> None:
    missing = [part for part in bodyparts if part not in names]
    extra = [name for name in names if name not in bodyparts]
    if missing or extra:
        raise ValueError(f"{what} does not name the body parts of {source}: missing {missing}, extra {extra}; "
                         "expected exactly the CSV's body parts.")


def read_dlc_config(path: str | Path) -> dict[str, Any]:
    """A DeepLabCut project's `config.yaml`."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"DeepLabCut config {path} does not exist.")
    try:
        config = yaml.safe_load(path.read_text())
    except (yaml.YAMLError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: not a readable yaml file ({error}).") from error
    if not isinstance(config, dict):
        raise ValueError(f"{path}: expected a DeepLabCut config (a mapping), got {type(config).__name__}.")
    return config


def _config_limbs(config: dict[str, Any], bodyparts: Sequence[str], path: Path) -> list[list[str]]:
    """The config's `skeleton` pairs; its body parts must be the CSV's. Pairs naming a unique body part (not an
    animal's) are dropped with a warning."""
    key = "multianimalbodyparts" if config.get("multianimalproject") else "bodyparts"
    names = config.get(key)
    if not isinstance(names, list):
        raise ValueError(f"{path}: `{key}` must be a list of body part names, got {names!r:.80}.")
    _check_same_parts(names, bodyparts, f"{path} (`{key}`)", "the CSV files")
    pairs = config.get("skeleton") or []
    if not isinstance(pairs, list) or not all(
        isinstance(pair, list) and len(pair) == 2 and all(isinstance(part, str) for part in pair) for pair in pairs
    ):
        raise ValueError(f"{path}: `skeleton` must be a list of [body part, body part] pairs, got {pairs!r:.80}.")
    dropped = [pair for pair in pairs if not set(pair) <= set(bodyparts)]
    if dropped:
        logger.warning("%s: dropping the skeleton pairs %s: they name body parts the animals do not have.",
                       path, dropped)
    return [pair for pair in pairs if pair not in dropped]


def convert_dlc(
    csv_files: Sequence[str | Path], *, project_dir: str | Path | None = None,
    skeleton: str | Path | Skeleton | None = None, dlc_config: str | Path | None = None, name: str | None = None,
    val_fraction: float = DEFAULT_VAL_FRACTION, seed: int = 0, val_files: Sequence[str] | None = None,
) -> ConvertedLabels:
    """Read DeepLabCut / Lightning Pose CSV files into training and validation COCO dicts.

    Args:
        csv_files: one or more CSV files (one per video folder, say); their body parts must agree.
        project_dir: the folder the image paths are relative to; None: found from each file (`find_project_dir`),
            which must agree.
        skeleton: a skeleton (or skeleton file) whose keypoints are exactly the body parts; None: the body parts
            (in the first file's order) with flip pairs inferred from the names and the limbs of `dlc_config`.
        dlc_config: a DeepLabCut `config.yaml`, for the limbs (its `skeleton`) and the name (its `Task`).
        name: the skeleton's name; None: the config's `Task`, else the project folder's name.
        val_fraction, seed, val_files: the validation hold-out; `val_files` are image paths as the CSV writes them
            (DeepLabCut 2.3's three index columns joined by `/`: `labeled-data/video/img.png`).

    Returns:
        A `ConvertedLabels` with `image_root` the project folder (see `convert_labels`).

    Illustration (not run here; tests/data/test_dlc_format.py converts the real mirror-mouse labels):

    ```python
    converted = convert_dlc(["mirror-mouse/CollectedData.csv"], val_fraction=0.1, seed=0)
    prepare_dataset_folder(converted.train, converted.image_root, converted.validation, converted.image_root,
                           "data/mirror_mouse_semi", skeleton=converted.skeleton, sources=converted.sources)
    ```
    """
    if not csv_files:
        raise ValueError("No CSV file given; expected at least one DeepLabCut / Lightning Pose CSV file.")
    tables = [read_dlc_csv(file) for file in csv_files]
    bodyparts = _common_bodyparts(tables)
    root = _project_dir(tables, project_dir)
    skeleton = dlc_skeleton(bodyparts, name or _task_name(dlc_config) or root.name, skeleton=skeleton,
                            dlc_config=dlc_config, source=str(tables[0].file))
    images = [image for table in tables for image in _labeled_images(table, root, skeleton)]
    return convert_labels(images, root, skeleton, [table.file for table in tables], val_fraction=val_fraction,
                          seed=seed, val_files=val_files)


def _task_name(dlc_config: str | Path | None) -> str | None:
    """A DeepLabCut config's `Task` (the project's name), if it has one."""
    task = None if dlc_config is None else read_dlc_config(dlc_config).get("Task")
    return task if isinstance(task, str) and task else None


def _common_bodyparts(tables: list[DlcTable]) -> tuple[str, ...]:
    """The first file's body parts; every file must have the same ones (in any order)."""
    first = tables[0]
    for table in tables[1:]:
        if set(table.bodyparts) != set(first.bodyparts):
            differing = sorted(set(table.bodyparts) ^ set(first.bodyparts))
            raise ValueError(f"{first.file} and {table.file} label different body parts: {differing} are in one "
                             "only; expected the same body parts in every CSV file.")
    return first.bodyparts


def _project_dir(tables: list[DlcTable], project_dir: str | Path | None) -> Path:
    if project_dir is not None:
        if not Path(project_dir).is_dir():
            raise FileNotFoundError(f"Project folder {project_dir} does not exist.")
        return Path(project_dir).resolve()
    found = {table.file: find_project_dir(table) for table in tables}
    if len(set(found.values())) > 1:
        raise ValueError(f"The CSV files' image paths are relative to different folders {found}; pass the one "
                         "project folder they share (--project-dir).")
    return found[tables[0].file]


def _labeled_images(table: DlcTable, root: Path, skeleton: Skeleton) -> list[LabeledImage]:
    """One `LabeledImage` per row, keypoints in the skeleton's order; a missing image names the row."""
    order = [table.bodyparts.index(name) for name in skeleton.keypoint_names]
    images = []
    for image, line, xy in zip(table.images, table.lines, table.xy):
        source = f"{table.file} line {line}"
        width, height = read_image_size(root / image, source)
        images.append(LabeledImage(image, width, height, [keypoints_from_xy(animal[order]) for animal in xy], source))
    return images
