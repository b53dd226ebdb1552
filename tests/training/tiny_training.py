"""`make_trainer`: the main job's trainer (`semipose.training.recipe`) on a tiny network (regnetx_002, 16 neck
channels, 64 px input) over a synthetic CrowdPose dataset folder, shared by the training tests."""

import torch

from semipose.training import SemiPoseTrainingArguments
from semipose.training.recipe import (
    DataArguments,
    ModelArguments,
    build_image_processor,
    build_model,
    build_trainer,
    build_training_data,
)


def make_trainer(dataset_dir, output_dir, *, family="center_offset", ssl_mode="semi", seed=0, **arguments):
    model_args = ModelArguments(model_family=family, neck_channels=16)
    data_args = DataArguments(dataset_dir=str(dataset_dir), dataset_config="ratio_10",
                              datasets_cache_dir=str(output_dir / "hf_cache"))
    defaults = dict(
        output_dir=str(output_dir), ssl_mode=ssl_mode, max_steps=4, burn_in_steps=2, ramp_up_ratio=0.0,
        per_device_train_batch_size=2, per_device_eval_batch_size=4, learning_rate=1e-3, logging_steps=1,
        save_strategy="no", report_to="none", seed=seed, use_cpu=True, dataloader_num_workers=0,
        pseudo_person_threshold=0.0, pseudo_keypoint_threshold=0.0,
    )
    training_args = SemiPoseTrainingArguments(**{**defaults, **arguments})
    data = build_training_data(model_args, data_args, training_args)
    model = build_model(model_args, data.skeleton, seed=seed)
    return build_trainer(model, build_image_processor(model_args, model.config), data, data_args, training_args)


def assert_identical(actual, expected, path: str = "state") -> None:
    """Exact equality of nested dicts / lists of tensors and numbers, naming the first difference."""
    if isinstance(expected, torch.Tensor):
        assert torch.equal(actual, expected), (
            f"{path} differs: max |diff| {(actual.double() - expected.double()).abs().max()}"
        )
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
