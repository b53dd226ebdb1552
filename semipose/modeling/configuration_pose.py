"""Fields shared by both pose model families: backbone, neck, skeleton facts, heatmap loss and decoding.

The family configs (`AssociativeEmbeddingConfig`, `CenterOffsetConfig`) subclass `PoseConfig` and add
their own loss weights and decoding thresholds. Every skeleton fact (`keypoint_names`, `flip_index`,
`sigmas`, `limbs`, `grouping_order`, ...; `semipose.skeletons.Skeleton.config_fields` writes them) is stored in
the config itself, so a saved checkpoint carries its skeleton and loads with `trust_remote_code=True` where
semipose is not installed. For the registered names (`coco`, `crowdpose`) facts left out are read from
`semipose.skeletons`: that is how checkpoints saved with a skeleton name alone keep loading.
"""

from transformers import PreTrainedConfig

SKELETON_LIST_FIELDS = ("flip_index", "sigmas", "grouping_order")
"""Per-keypoint lists of K entries; `flip_index` may be None: a skeleton that is never mirrored."""
OUTPUT_STRIDES = (2, 4)


def _registered_skeleton(name: str):
    """The `semipose.skeletons.Skeleton` called `name`, or None (unknown name, or semipose not installed)."""
    try:
        from semipose.skeletons import SKELETONS
    except ImportError:  # checkpoint code loaded with trust_remote_code, without semipose
        return None
    return SKELETONS.get(name)


class PoseConfig(PreTrainedConfig):
    r"""
    Base configuration of the semipose models; use a family config, not this class.

    Args:
        backbone (`str`, *optional*, defaults to `"resnet50"`):
            timm model name; built with `features_only=True` and random weights (pass
            `pretrained_backbone=` to the model to load weights).
        backbone_out_indices (`list[int]`, *optional*):
            timm feature levels fused by the neck; default: every level of stride >= 4.
        neck_channels (`int`, *optional*, defaults to 128):
            channels of the fused feature map the heads read.
        output_stride (`int`, *optional*, defaults to 4):
            stride of the predicted maps relative to the input: 4, or 2 (HigherHRNet-style).
        skeleton (`str`, *optional*, defaults to `"coco"`):
            skeleton name (`"coco"`, `"crowdpose"` or a custom name with the facts below given; build them
            with `**Skeleton.config_fields()`).
        num_keypoints (`int`, *optional*):
            K; default: the skeleton's. A value that disagrees with a registered skeleton raises.
        keypoint_names (`list[str]`, *optional*):
            K keypoint names.
        flip_index (`list[int]`, *optional*):
            K indices: channel k of a horizontally flipped image is channel `flip_index[k]`. None for a custom
            skeleton: it is never mirrored (no flip test).
        sigmas (`list[float]`, *optional*):
            K OKS sigmas.
        limbs (`list[list[int]]`, *optional*):
            pairs of keypoint indices drawn as bones.
        grouping_order (`list[int]`, *optional*):
            K indices: order in which bottom-up decoding attaches keypoints to people.
        oks_area_from_bbox (`bool`, *optional*):
            the OKS scale comes from the box (CrowdPose's rule); default: the skeleton's, else False.
        heatmap_sigma (`float`, *optional*, defaults to 2.0):
            standard deviation, in heatmap pixels, of the Gaussian targets.
        heatmap_loss_weight (`float`, *optional*, defaults to 1.0):
            weight of the keypoint heatmap MSE in `loss`.
        max_people (`int`, *optional*, defaults to 30):
            most people decoded per image.
        nms_kernel (`int`, *optional*, defaults to 5):
            max-pool window of the heatmap non-maximum suppression.
        refine (`bool`, *optional*, defaults to `True`):
            sub-pixel refinement of decoded keypoints; for center_offset, also snapping each regressed keypoint
            to its heatmap peak (off: keypoints = center + offsets, SPR's rule, cheaper one image per call and
            about half the AP on the main job's validation; README, decoding).
        flip_test (`bool`, *optional*, defaults to `False`):
            evaluation and inference also run the mirrored image and average the maps (the published protocol
            on real photos), unless a caller says otherwise; training never flips at test time.
        initializer_range (`float`, *optional*, defaults to 0.001):
            std of the normal init of neck and head convolutions (the backbone keeps timm's init).
    """

    backbone: str = "resnet50"
    backbone_out_indices: list[int] | None = None
    neck_channels: int = 128
    output_stride: int = 4
    skeleton: str = "coco"
    num_keypoints: int | None = None
    keypoint_names: list[str] | None = None
    flip_index: list[int] | None = None
    sigmas: list[float] | None = None
    limbs: list[list[int]] | None = None
    grouping_order: list[int] | None = None
    oks_area_from_bbox: bool | None = None
    heatmap_sigma: float = 2.0
    heatmap_loss_weight: float = 1.0
    max_people: int = 30
    nms_kernel: int = 5
    refine: bool = True
    flip_test: bool = False
    initializer_range: float = 0.001

    def __post_init__(self, **kwargs):
        if self.output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {self.output_stride}.")
        self._fill_skeleton_facts()
        self.check_skeleton_facts()
        super().__post_init__(**kwargs)

    def _fill_skeleton_facts(self) -> None:
        """Take the skeleton facts left unset from `semipose.skeletons` (when semipose is installed)."""
        known = _registered_skeleton(self.skeleton)
        if known is None or self.num_keypoints not in (None, known.num_keypoints):
            if self.oks_area_from_bbox is None:
                self.oks_area_from_bbox = False
            return
        for name, value in known.config_fields().items():
            if getattr(self, name) is None:
                setattr(self, name, value)

    def check_skeleton_facts(self) -> None:
        """Raise ValueError unless `num_keypoints`, the per-keypoint lists and the named skeleton agree."""
        known = _registered_skeleton(self.skeleton)
        if known is not None and self.num_keypoints != known.num_keypoints:
            raise ValueError(
                f"Skeleton {self.skeleton!r} has {known.num_keypoints} keypoints, "
                f"got num_keypoints={self.num_keypoints}."
            )
        missing = [name for name in ("num_keypoints", "sigmas", "grouping_order") if getattr(self, name) is None]
        if missing:
            raise ValueError(
                f"Skeleton {self.skeleton!r} is not registered in semipose.skeletons: pass {missing} explicitly "
                "(`**Skeleton.config_fields()` gives every fact)."
            )
        if self.flip_index is None and self.flip_test:
            raise ValueError(f"Skeleton {self.skeleton!r} is never mirrored (no flip_index): flip_test must be off.")
        for name in (*SKELETON_LIST_FIELDS, "keypoint_names"):
            if getattr(self, name) is not None and len(getattr(self, name)) != self.num_keypoints:
                raise ValueError(
                    f"{name} must have num_keypoints={self.num_keypoints} entries, got {len(getattr(self, name))}."
                )
