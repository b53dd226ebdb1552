"""`make_trainer`: the tiny training run (synthetic 64 px CrowdPose data, regnetx_002) the training tests share."""

import torch

from semipose.data.collator import PoseDataCollator
from semipose.data.dataset_folder import load_pose_dataset
from semipose.data.semi_supervised import SemiSupervisedCollator, SemiSupervisedDataset
from semipose.data.transforms import AugmentationConfig, LabeledTransform, UnlabeledTransform
from semipose.modeling import MODEL_FAMILIES as FAMILIES
from semipose.modeling import PoseImageProcessor
from semipose.training import SemiPoseTrainer, SemiPoseTrainingArguments

INPUT_SIZE = 64


def make_trainer(dataset_dir, output_dir, *, family="center_offset", ssl_mode="semi", seed=0, **arguments):
    config_class, model_class = FAMILIES[family]
    torch.manual_seed(seed)
    model = model_class(config_class(backbone="regnetx_002", neck_channels=16, skeleton="crowdpose"))
    labeled = load_pose_dataset(dataset_dir, "ratio_10", "labeled", cache_dir=output_dir / "hf_cache")
    labeled = labeled.with_transform(LabeledTransform(INPUT_SIZE, AugmentationConfig.light(), skeleton="crowdpose"))
    train_dataset, collator = labeled, PoseDataCollator()
    if ssl_mode != "supervised":
        unlabeled = load_pose_dataset(dataset_dir, "ratio_10", "unlabeled", cache_dir=output_dir / "hf_cache")
        train_dataset = SemiSupervisedDataset(labeled, unlabeled.with_transform(UnlabeledTransform(INPUT_SIZE)))
        collator = SemiSupervisedCollator(PoseDataCollator(), PoseDataCollator())
    defaults = dict(
        output_dir=str(output_dir), ssl_mode=ssl_mode, max_steps=4, burn_in_steps=2, ramp_up_ratio=0.0,
        per_device_train_batch_size=2, per_device_eval_batch_size=4, learning_rate=1e-3, logging_steps=1,
        save_strategy="no", report_to="none", seed=seed, use_cpu=True, dataloader_num_workers=0,
        pseudo_person_threshold=0.0, pseudo_keypoint_threshold=0.0,
    )
    args = SemiPoseTrainingArguments(**{**defaults, **arguments})
    return SemiPoseTrainer(
        model=model, args=args, train_dataset=train_dataset, data_collator=collator,
        eval_dataset=load_pose_dataset(dataset_dir, "ratio_10", "validation", cache_dir=output_dir / "hf_cache"),
        processing_class=PoseImageProcessor(size=INPUT_SIZE, output_stride=4, grouping_order=model.config.grouping_order),
    )


def assert_identical(actual, expected, path: str = "state") -> None:
    """Exact equality of nested dicts / lists of tensors and numbers, naming the first difference."""
    if isinstance(expected, torch.Tensor):
        assert torch.equal(actual, expected), f"{path} differs: max |diff| {(actual.double() - expected.double()).abs().max()}"
    elif isinstance(expected, dict):
        assert actual.keys() == expected.keys(), f"{path}: keys {sorted(actual)} != {sorted(expected)}"
        for key in expected:
            assert_identical(actual[key], expected[key], f"{path}[{key!r}]")
    elif isinstance(expected, (list, tuple)):
        assert len(actual) == len(expected), f"{path}: length {len(actual)} != {len(expected)}"
        for index, (left, right) in enumerate(zip(actual, expected)):
            assert_identical(left, right, f"{path}[{index}]")
    else:
        assert actual == expected, f"{path}: {actual!r} != {expected!r}"


def training_logs(trainer) -> list[dict]:
    """The per-step training logs (loss, grad norm, learning rate, every loss term)."""
    return [entry for entry in trainer.state.log_history if "loss" in entry]
