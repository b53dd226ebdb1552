"""The one folder-search rule of `semipose predict` and the converters: sub-folders searched, hidden files and
folders and an excluded output folder left out, sorted; output names keep the sub-folders apart."""

from pathlib import Path

from semipose.data.folder_files import files_under, relative_stems


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_files_under_searches_sub_folders_and_leaves_out_hidden_and_excluded_ones(tmp_path):
    _touch(tmp_path, "b.jpg", "a.png", "trip/c.jpg", "trip/day2/d.mp4", ".DS_Store", "trip/.e.jpg",
           ".git/f.jpg", "trip/.ipynb_checkpoints/g.jpg", "poses/predictions.json")
    found = files_under(tmp_path, exclude=tmp_path / "poses")
    assert [path.relative_to(tmp_path).as_posix() for path in found] == [
        "a.png", "b.jpg", "trip/c.jpg", "trip/day2/d.mp4"]
    assert tmp_path / "poses" / "predictions.json" in files_under(tmp_path)  # only the excluded folder goes


def test_relative_stems_keep_sub_folders_from_the_deepest_common_folder(tmp_path):
    paths = [tmp_path / "a.png", tmp_path / "trip" / "c.jpg", tmp_path / "trip" / "day2" / "d.mp4"]
    assert relative_stems(paths) == ["a", "trip/c", "trip/day2/d"]
    assert relative_stems(paths[1:]) == ["c", "day2/d"]  # common folder: trip/
    assert relative_stems([tmp_path / "x.tar.gz"]) == ["x.tar"]
    assert relative_stems([]) == []
