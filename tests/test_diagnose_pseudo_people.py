"""The pseudo-people diagnostic scores the teacher on the images it asks for, with their true people."""

from benchmarks.diagnose_pseudo_people import scored_images
from semipose.data.dataset_folder import load_pose_dataset, prepare_dataset_folder

FIXTURE_IDS = [785, 40083, 196141, 197388]  # tests/fixtures/coco


def test_unlabeled_split_is_the_annotated_training_images_outside_the_labeled_subset(coco_fixture_dir, tmp_path):
    annotations = coco_fixture_dir / "test_coco.json"
    folder = prepare_dataset_folder(annotations, coco_fixture_dir, annotations, coco_fixture_dir,
                                    tmp_path / "coco_semi", show_progress=False)
    run = {"dataset": str(folder), "dataset_config": "ratio_5"}
    labeled = load_pose_dataset(folder, "ratio_5", "labeled")
    unlabeled = scored_images(run, "unlabeled")
    assert len(labeled) == 1
    assert sorted(unlabeled["image_id"]) == sorted(set(FIXTURE_IDS) - set(labeled["image_id"]))
    truth = {row["image_id"]: row["keypoints"] for row in load_pose_dataset(folder, "full", "labeled")}
    assert all(row["keypoints"] == truth[row["image_id"]] and row["keypoints"] for row in unlabeled)
    assert sorted(scored_images(run, "validation")["image_id"]) == FIXTURE_IDS
