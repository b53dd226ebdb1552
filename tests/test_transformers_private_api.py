"""The transformers internals semipose builds on still exist and take the arguments we pass.

`SemiPoseTrainer` overrides and calls private `Trainer` methods, `PoseImageProcessor` overrides private
`TorchvisionBackend` ones, and the callbacks hook into named `TrainerCallback` events. None of that is
public API, so pyproject declares the transformers range it was tested with; after an upgrade this file
fails first and names the method, instead of a run failing deep inside training (or an override that
transformers no longer calls going silently unused).
"""

import ast
import inspect

import pytest
from transformers import Trainer, TrainerCallback, image_processing_backends, image_processing_utils
from transformers import trainer as trainer_module
from transformers.image_processing_backends import TorchvisionBackend
from transformers.integrations import TensorBoardCallback, integration_utils

from semipose.modeling import PoseImageProcessor
from semipose.training import SemiPoseTrainer
from semipose.training.image_logging import ImageLoggingCallback
from semipose.training.trainer import _TeacherCallback

ANY = object()

# (transformers class, private method, positional arguments, keyword arguments), as semipose calls it.
CALLED = [
    # SemiPoseTrainer._save_checkpoint: super()._save_checkpoint(model, trial)
    (Trainer, "_save_checkpoint", (ANY, ANY), {}),
    (Trainer, "_save_checkpoint", (ANY,), {"trial": None}),  # stopping after non-finite steps
    (Trainer, "_load_from_checkpoint", (ANY, ANY), {}),
    (Trainer, "_get_output_dir", (), {"trial": ANY}),
    (Trainer, "_get_dataloader", (),
     {"dataset": ANY, "description": "Training", "batch_size": 2, "sampler_fn": ANY, "is_training": True}),
    # passed as `sampler_fn`, which `_get_dataloader` calls with the dataset
    (Trainer, "_get_train_sampler", (ANY,), {}),
    (Trainer, "_clip_grad_norm", (ANY,), {}),  # benchmarks/bench_speed.py, as the Trainer's loop calls it
    (TorchvisionBackend, "_standardize_kwargs", (), {"size": ANY, "image_mean": ANY}),
]

# (our class, the transformers class it extends, the private methods it overrides)
OVERRIDDEN = [
    (SemiPoseTrainer, Trainer, ["_save_checkpoint", "_load_from_checkpoint", "_run_epoch", "_get_grad_norm"]),
    (PoseImageProcessor, TorchvisionBackend, ["_standardize_kwargs", "_preprocess"]),
]
PUBLIC_OVERRIDES = (SemiPoseTrainer, Trainer, ["compute_loss", "training_step", "log", "train",
                                               "get_train_dataloader", "evaluate"])
CALLER_MODULES = {Trainer: [trainer_module], TorchvisionBackend: [image_processing_utils, image_processing_backends]}

# (transformers class, module that sets it, attribute on `self` that semipose or its benchmarks read)
ATTRIBUTES = [
    (Trainer, trainer_module, "_train_batch_size"),  # SemiPoseTrainer.get_train_dataloader
    (Trainer, trainer_module, "is_in_train"),  # SemiPoseTrainer.evaluate keeps the training loop's evaluations
    (Trainer, trainer_module, "current_gradient_accumulation_steps"),  # set by benchmarks/bench_speed.py
    (TensorBoardCallback, integration_utils, "logging_dir"),  # ImageLoggingCallback writes beside it
]


def _calls_on_self(modules, name: str) -> list[ast.Call]:
    """Every `self.<name>(...)` call in the source of `modules`."""
    calls = []
    for module in modules:
        for node in ast.walk(ast.parse(inspect.getsource(module))):
            if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute) and node.func.attr == name:
                if isinstance(node.func.value, ast.Name) and node.func.value.id == "self":
                    calls.append(node)
    return calls


def _bind_call(signature: inspect.Signature, call: ast.Call) -> None:
    """Bind the arguments of a call found in source (placeholders for values); `*x` / `**x` bind partially."""
    starred = any(isinstance(arg, ast.Starred) for arg in call.args) or any(k.arg is None for k in call.keywords)
    positional = [ANY for arg in call.args if not isinstance(arg, ast.Starred)]
    keywords = {keyword.arg: ANY for keyword in call.keywords if keyword.arg is not None}
    bind = signature.bind_partial if starred else signature.bind
    bind(ANY, *positional, **keywords)


@pytest.mark.parametrize(("owner", "name", "args", "kwargs"), CALLED, ids=[f"{c[0].__name__}.{c[1]}" for c in CALLED])
def test_private_methods_we_call_take_our_arguments(owner, name, args, kwargs):
    method = getattr(owner, name, None)
    assert callable(method), f"transformers' {owner.__name__}.{name} is gone"
    inspect.signature(method).bind(ANY, *args, **kwargs)


@pytest.mark.parametrize(("ours", "base", "names"), OVERRIDDEN, ids=[o[0].__name__ for o in OVERRIDDEN])
def test_private_overrides_still_override_and_accept_every_call_transformers_makes(ours, base, names):
    for name in names:
        assert name in vars(ours), f"{ours.__name__} no longer overrides {name}: update this list"
        assert callable(getattr(base, name, None)), (
            f"transformers' {base.__name__}.{name} is gone: our override is dead"
        )
        calls = _calls_on_self(CALLER_MODULES[base], name)
        assert calls, f"transformers no longer calls {base.__name__}.{name}: our override would never run"
        signature = inspect.signature(getattr(ours, name))
        for call in calls:
            try:
                _bind_call(signature, call)
            except TypeError as error:
                raise AssertionError(f"{ours.__name__}.{name}{signature} cannot take transformers' call at line "
                                     f"{call.lineno}: {error}") from error


def test_public_overrides_accept_the_base_parameters():
    ours, base, names = PUBLIC_OVERRIDES
    for name in names:
        base_parameters = list(inspect.signature(getattr(base, name)).parameters.values())[1:]
        positional = [ANY for p in base_parameters if p.kind is p.POSITIONAL_ONLY]
        keywords = {p.name: ANY for p in base_parameters if p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)}
        inspect.signature(getattr(ours, name)).bind(ANY, *positional, **keywords)


@pytest.mark.parametrize(("owner", "module", "name"), ATTRIBUTES, ids=[a[2] for a in ATTRIBUTES])
def test_attributes_we_read_are_still_set(owner, module, name):
    tree = ast.parse(inspect.getsource(module))
    assigned = {
        target.attr for node in ast.walk(tree) if isinstance(node, (ast.Assign, ast.AnnAssign))
        for target in (node.targets if isinstance(node, ast.Assign) else [node.target])
        if isinstance(target, ast.Attribute) and isinstance(target.value, ast.Name) and target.value.id == "self"
    }
    assert name in assigned, f"transformers no longer sets {owner.__name__}.{name}"


@pytest.mark.parametrize("callback", [_TeacherCallback, ImageLoggingCallback], ids=lambda c: c.__name__)
def test_callback_hooks_are_trainer_events(callback):
    hooks = [name for name in vars(callback) if name.startswith("on_")]
    assert hooks
    for name in hooks:
        assert callable(getattr(TrainerCallback, name, None)), f"{callback.__name__}.{name} is no TrainerCallback event"
