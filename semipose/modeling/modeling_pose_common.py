"""What both pose families share: backbone + neck, input checks, forward with flip test, loss sum, init, save.

A family subclasses `PosePreTrainedModel`, sets `output_class` and defines:
- `read_heads(features [B, C, h, w]) -> dict[str, Tensor]`: its heads, the output's named raw maps;
- `unflip(maps) -> maps`: maps predicted on mirrored images, in the frame of the original images;
- `loss_terms(outputs, keypoints, ignore_mask) -> dict[str, Tensor]`: the codec's unweighted loss;
- `loss_weights() -> dict[str, float]`: the config weight of each term;
- `decode(outputs) -> DecodedPoses`: the codec's decoder with the config's settings.

Shape letters: B images, M people, K keypoints, (H, W) input pixels, (h, w) = (H, W) / output_stride.
"""

import torch
from torch import nn
from transformers import PreTrainedModel
from transformers import initialization as init
from transformers.utils import ModelOutput

from .backbone import PoseBackbone, conv_bn_relu
from .codec_common import check_keypoints
from .configuration_pose import PoseConfig
from .pipeline_pose_estimation import remote_code_pipelines

AUTO_MODEL_CLASSES = ("AutoModel", "AutoModelForPoseEstimation")
HUB_KWARGS = ("cache_dir", "force_download", "local_files_only", "token", "revision", "subfolder")


class PredictionConv(nn.Conv2d):
    """The last 1x1 conv of a head, producing raw maps; initialized with a small normal (HigherHRNet)."""


def prediction_head(in_channels: int, out_channels: int) -> nn.Sequential:
    """A 3x3 conv-BN-ReLU block, then a `PredictionConv` to `out_channels` raw maps."""
    return nn.Sequential(conv_bn_relu(in_channels, in_channels), PredictionConv(in_channels, out_channels, 1))


def flip_maps(maps: torch.Tensor, channel_index: list[int]) -> torch.Tensor:
    """Undo a horizontal flip of the input on `[B, C, h, w]` maps: mirror the width, reorder channels.

    With pixel-center coordinates and W = s * w, input column x maps to W - 1 - x and heatmap column u
    to w - 1 - u, so mirroring the map is exact.
    """
    return maps.flip(-1)[:, channel_index]


def select_images(outputs: ModelOutput, index: slice | torch.Tensor) -> ModelOutput:
    """The same output type holding only the maps of images `index` (losses dropped).

    Lets a trainer run one forward over labeled + unlabeled images and call `compute_loss` or
    `decode` on each part.

    Illustration (not run: needs a model's outputs and a labeled batch):

    ```python
    labeled = select_images(outputs, slice(0, 8))
    losses = model.compute_loss(labeled, keypoints, ignore_mask)
    ```
    """
    return type(outputs)(**{name: value[index] for name, value in outputs.items() if value.ndim == 4})


class PosePreTrainedModel(PreTrainedModel):
    """Base of the semipose models: timm backbone + neck, a family's heads on the fused map.

    Args:
        config: a family config (`PoseConfig` subclass).
        pretrained_backbone: `False` (random init), `True` (timm's weights, may download) or the path
            of a local timm checkpoint. Not stored in the config: a saved model carries its weights.
    """

    config_class = PoseConfig
    base_model_prefix = "pose"
    main_input_name = "pixel_values"
    input_modalities = ("image",)
    accepts_loss_kwargs = False
    output_class: type[ModelOutput]

    def __init__(self, config: PoseConfig, *, pretrained_backbone: bool | str = False):
        super().__init__(config)
        config.check_skeleton_facts()
        self.backbone = PoseBackbone(
            config.backbone,
            neck_channels=config.neck_channels,
            output_stride=config.output_stride,
            out_indices=config.backbone_out_indices,
            pretrained=pretrained_backbone,
        )
        self._timm_module_ids = frozenset(id(module) for module in self.backbone.body.modules())

    def _init_weights(self, module: nn.Module) -> None:
        """Keep timm's init in the backbone; Kaiming for neck and head convs, small normal for `PredictionConv`."""
        if id(module) in self._timm_module_ids:
            if hasattr(module, "init_non_persistent_buffers"):
                module.init_non_persistent_buffers()
        elif isinstance(module, PredictionConv):
            init.normal_(module.weight, std=self.config.initializer_range)
            init.zeros_(module.bias)
        elif isinstance(module, (nn.Conv2d, nn.ConvTranspose2d)):
            init.kaiming_normal_(module.weight, mode="fan_out", nonlinearity="relu")
            if module.bias is not None:
                init.zeros_(module.bias)
        elif isinstance(module, nn.BatchNorm2d):
            init.ones_(module.weight)
            init.zeros_(module.bias)
            init.zeros_(module.running_mean)
            init.ones_(module.running_var)
            init.zeros_(module.num_batches_tracked)

    def forward(
        self,
        pixel_values: torch.Tensor,
        keypoints: torch.Tensor | None = None,
        ignore_mask: torch.Tensor | None = None,
        flip_test: bool = False,
        return_dict: bool = True,
    ) -> ModelOutput | tuple:
        """Predict the family's maps; with `keypoints`, also the loss (see `compute_loss`).

        Args:
            pixel_values (`torch.Tensor` of shape `(B, 3, H, W)`): normalized images, H and W multiples
                of the backbone's coarsest stride (`PoseImageProcessor` pads to them).
            keypoints (`torch.Tensor` of shape `(B, M, K, 3)`, *optional*): (x, y, v) in input pixels.
            ignore_mask (`torch.Tensor` of shape `(B, H, W)`, bool, *optional*): True = do not train here.
            flip_test (`bool`): also run the mirrored images and average (test-time augmentation).
            return_dict (`bool`): return the output dataclass, else a tuple of its non-None fields.
        """
        self._check_pixel_values(pixel_values)
        maps = self.predict_maps(pixel_values)
        if flip_test and self.config.flip_index is None:
            raise ValueError(f"flip_test: the {self.config.skeleton!r} skeleton is never mirrored (no flip_index).")
        if flip_test:
            maps = self.merge_flipped(maps, self.unflip(self.predict_maps(pixel_values.flip(-1))))
        losses = {}
        if keypoints is not None:
            losses = self.compute_loss(self.output_class(**maps), keypoints, ignore_mask)
        outputs = self.output_class(**losses, **maps)
        return outputs if return_dict else outputs.to_tuple()

    def predict_maps(self, pixel_values: torch.Tensor) -> dict[str, torch.Tensor]:
        """Backbone + neck + heads: the named raw maps, each `[B, C, h, w]`."""
        return self.read_heads(self.backbone(pixel_values))

    def merge_flipped(
        self, maps: dict[str, torch.Tensor], unflipped: dict[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """Combine the maps of the original and of the (un-)flipped pass: the mean of each map."""
        return {name: (value + unflipped[name]) / 2 for name, value in maps.items()}

    def compute_loss(
        self, outputs: ModelOutput, keypoints: torch.Tensor, ignore_mask: torch.Tensor | None = None
    ) -> dict[str, torch.Tensor]:
        """The weighted loss (`"loss"`) and its terms, from raw keypoints; works on `select_images` slices.

        Args:
            outputs: the family's output (only its maps are read).
            keypoints (`torch.Tensor` of shape `(B, M, K, 3)`): (x, y, v) in input pixels.
            ignore_mask (`torch.Tensor` of shape `(B, H, W)`, bool, *optional*): True = do not train here.
        """
        check_keypoints(keypoints, outputs.heatmaps.shape[0], self.config.num_keypoints)
        terms = self.loss_terms(outputs, keypoints, ignore_mask)
        weights = self.loss_weights()
        return {"loss": sum(weights[name] * value for name, value in terms.items()), **terms}

    def _check_pixel_values(self, pixel_values: torch.Tensor) -> None:
        if pixel_values.ndim != 4 or pixel_values.shape[1] != 3:
            raise ValueError(f"pixel_values: expected shape [B, 3, H, W], got {list(pixel_values.shape)}.")
        divisor = self.backbone.size_divisor
        height, width = pixel_values.shape[-2:]
        if height % divisor or width % divisor:
            raise ValueError(
                f"pixel_values: expected H and W multiples of {divisor} (the backbone's coarsest stride), got "
                f"H={height}, W={width}; pad the images, e.g. with PoseImageProcessor(size_divisor={divisor})."
            )

    @classmethod
    def from_pretrained(cls, pretrained_model_name_or_path, *model_args, **kwargs):
        """`PreTrainedModel.from_pretrained`; an explicit `config` whose keypoint count differs from the
        checkpoint's raises ValueError (`ignore_mismatched_sizes=True` re-initializes the heads instead)."""
        config = kwargs.get("config")
        if isinstance(config, PoseConfig) and not kwargs.get("ignore_mismatched_sizes", False):
            hub_kwargs = {name: kwargs[name] for name in HUB_KWARGS if name in kwargs}
            saved, _ = PoseConfig.get_config_dict(pretrained_model_name_or_path, **hub_kwargs)
            if saved.get("num_keypoints") != config.num_keypoints:
                raise ValueError(
                    f"Checkpoint {pretrained_model_name_or_path} has num_keypoints={saved.get('num_keypoints')}, "
                    f"the config expects {config.num_keypoints}; pass ignore_mismatched_sizes=True to "
                    "re-initialize the heads."
                )
        return super().from_pretrained(pretrained_model_name_or_path, *model_args, **kwargs)

    def save_pretrained(self, save_directory, *args, **kwargs) -> None:
        """`PreTrainedModel.save_pretrained`; a model registered for remote code maps both `AutoModel` and
        `AutoModelForPoseEstimation` to its class in `config.json`'s `auto_map`, and declares the pipeline
        in its `custom_pipelines` (its file is copied with this module's other relative imports)."""
        if self.is_remote_code():
            reference = f"{type(self).__module__.split('.')[-1]}.{type(self).__name__}"
            auto_map = getattr(self.config, "auto_map", None) or {}
            self.config.auto_map = {**auto_map, **dict.fromkeys(AUTO_MODEL_CLASSES, reference)}
            self.config.custom_pipelines = remote_code_pipelines()
        super().save_pretrained(save_directory, *args, **kwargs)
