"""Image processor of the semipose models: resize, pad, normalize in; decode and map to image pixels out.

Geometry lives here, never in `forward`: each image is placed as the training views place it
(`semipose.modeling.input_geometry`: the longest edge resized to `size["longest_edge"]`, top-left, the
same resampling and normalization, so the same photo gives the same input pixels as the identity training
view), then the batch is zero-padded at the bottom/right to its largest size rounded up to a multiple of
`size_divisor` (the backbone's coarsest stride). Post-processing decodes people (or takes already decoded
`DecodedPoses`) and inverts that placement, so keypoints come back in ORIGINAL image pixels (integer
coordinates = pixel centers, as everywhere in semipose).

Example:

```python
>>> import torch
>>> from semipose.modeling import PoseImageProcessor
>>> processor = PoseImageProcessor(size={"longest_edge": 256})
>>> inputs = processor([torch.zeros(3, 480, 640, dtype=torch.uint8)], return_tensors="pt")
>>> inputs["pixel_values"].shape
torch.Size([1, 3, 192, 256])
>>> # outputs = model(**inputs)
>>> # people = processor.post_process_pose_estimation(outputs, target_sizes=[(480, 640)])

```
"""

import math

import torch
import torch.nn.functional as F
from transformers.image_processing_backends import TorchvisionBackend
from transformers.image_processing_utils import BatchFeature
from transformers.image_utils import IMAGENET_DEFAULT_MEAN, IMAGENET_DEFAULT_STD, PILImageResampling, SizeDict
from transformers.processing_utils import ImagesKwargs, Unpack
from transformers.utils import ModelOutput

from .codec_associative_embedding import decode_associative_embedding
from .codec_center_offset import decode_center_offset
from .codec_common import DecodedPoses
from .configuration_associative_embedding import AssociativeEmbeddingConfig
from .configuration_pose import PoseConfig
from .input_geometry import input_canvas_size, input_to_original, placement_matrix, render_input


class PoseImageProcessorKwargs(ImagesKwargs, total=False):
    r"""
    size_divisor (`int`, *optional*, defaults to 32):
        padded height and width are multiples of this (the backbone's coarsest stride).
    output_stride (`int`, *optional*, defaults to 4):
        stride of the model's maps, used when decoding raw outputs (the model config's `output_stride`).
    grouping_order (`list[int]`, *optional*):
        keypoint order for associative-embedding grouping (the model config's `grouping_order`);
        default: keypoint index order.
    """

    size_divisor: int | None
    output_stride: int | None
    grouping_order: list[int] | None


class PoseImageProcessor(TorchvisionBackend):
    r"""
    Prepares images for the semipose models and turns their outputs into people in image pixels.

    Args:
        size (`dict[str, int]` or `int`, *optional*, defaults to `{"longest_edge": 512}`):
            resize target; an int means the longest edge.
        size_divisor (`int`, *optional*, defaults to 32): padding multiple.
        output_stride (`int`, *optional*, defaults to 4): the model's output stride, for decoding.
        grouping_order (`list[int]`, *optional*): associative-embedding grouping order, for decoding.
        Other arguments (`do_resize`, `do_rescale`, `do_normalize`, `image_mean`, `image_std`, `do_pad`) as in
        every transformers image processor; `resample` is not used: images are resampled as the training views
        are (`input_geometry.render_input`: exact box reduction, then bilinear), so both see the same pixels.
    """

    valid_kwargs = PoseImageProcessorKwargs
    model_input_names = ["pixel_values"]

    do_resize = True
    size = {"longest_edge": 512}
    resample = PILImageResampling.BILINEAR
    do_rescale = True
    rescale_factor = 1 / 255
    do_normalize = True
    image_mean = IMAGENET_DEFAULT_MEAN
    image_std = IMAGENET_DEFAULT_STD
    do_pad = True
    size_divisor = 32
    output_stride = 4
    grouping_order = None

    def __init__(self, **kwargs: Unpack[PoseImageProcessorKwargs]):
        super().__init__(**kwargs)

    def _standardize_kwargs(self, size=None, **kwargs) -> dict:
        """An int `size` is the longest edge; a size dict must hold only `longest_edge`."""
        if isinstance(size, int):
            size = {"longest_edge": size}
        kwargs = super()._standardize_kwargs(size=size, **kwargs)
        if kwargs["size"] is not None and set(dict(kwargs["size"])) != {"longest_edge"}:
            raise ValueError(f"size: expected an int or {{'longest_edge': int}}, got {dict(kwargs['size'])}.")
        return kwargs

    def _preprocess(
        self,
        images: list[torch.Tensor],
        do_resize: bool,
        size: SizeDict,
        resample,
        do_rescale: bool,
        rescale_factor: float,
        do_normalize: bool,
        image_mean,
        image_std,
        do_pad: bool,
        size_divisor: int,
        return_tensors=None,
        **kwargs,
    ) -> BatchFeature:
        """Place (`input_geometry`), rescale + normalize each `[3, h, w]` image, then pad the batch; returns
        `pixel_values`."""
        mean, std = (image_mean, image_std) if do_normalize else ((0.0,) * 3, (1.0,) * 3)
        factor = rescale_factor if do_rescale else 1.0
        processed = []
        for image in images:
            matrix, render_size, (height, width) = _placement(tuple(image.shape[-2:]), size.longest_edge, do_resize)
            processed.append(render_input(image, matrix, render_size, mean, std, factor)[:, :height, :width])
        if do_pad:
            processed = pad_to_multiple(processed, size_divisor)
        return BatchFeature(data={"pixel_values": processed}, tensor_type=return_tensors)

    def padded_input_size(self, image_size: tuple[int, int]) -> tuple[int, int]:
        """`(H, W)` of the input this processor makes of an image of `image_size = (height, width)` on its own:
        placed, then padded up to `size_divisor` (in a batch, padding reaches the batch's largest image)."""
        height, width = _placement(image_size, self.size.longest_edge, self.do_resize)[2]
        if not self.do_pad:
            return height, width
        return (math.ceil(height / self.size_divisor) * self.size_divisor,
                math.ceil(width / self.size_divisor) * self.size_divisor)

    def decode(self, outputs: ModelOutput, **decode_kwargs) -> DecodedPoses:
        """Decode raw model outputs with the family's decoder (chosen by the output's fields).

        Args:
            outputs: an `AssociativeEmbeddingOutput` (has `tags`) or a `CenterOffsetOutput` (has
                `center_heatmap` and `offsets`).
            decode_kwargs: overrides of the decoder's settings (thresholds, `max_people`, ...).
        """
        if getattr(outputs, "tags", None) is not None:
            grouping_order = self.grouping_order or list(range(outputs.heatmaps.shape[1]))
            decode_kwargs = {"grouping_order": grouping_order, **decode_kwargs}
            return decode_associative_embedding(
                outputs.heatmaps, outputs.tags, stride=self.output_stride, **decode_kwargs
            )
        if getattr(outputs, "center_heatmap", None) is not None:
            return decode_center_offset(
                outputs.heatmaps, outputs.center_heatmap, outputs.offsets, stride=self.output_stride, **decode_kwargs
            )
        raise ValueError(
            "outputs: expected an AssociativeEmbeddingOutput (with tags) or a CenterOffsetOutput (with "
            f"center_heatmap and offsets), got {type(outputs).__name__} without them."
        )

    def post_process_pose_estimation(
        self,
        outputs: ModelOutput | DecodedPoses,
        target_sizes: list[tuple[int, int]] | torch.Tensor | None = None,
        **decode_kwargs,
    ) -> list[dict[str, torch.Tensor]]:
        """People per image, in original image pixels.

        Args:
            outputs: raw model outputs (decoded here, see `decode`) or `DecodedPoses` (e.g.
                `model.decode(outputs)`, which uses the model config's decoding settings).
            target_sizes (`list[tuple[int, int]]` or `torch.Tensor` of shape `(B, 2)`, *optional*): original
                (height, width) of each image; keypoints are mapped back through this processor's resize.
                None keeps them in model input pixels.
            decode_kwargs: decoder overrides, when `outputs` are raw.

        Returns:
            One dict per image: `keypoints [M, K, 2]` (x, y), `keypoint_scores [M, K]`, `scores [M]`,
            people sorted by score.
        """
        poses = outputs if _is_decoded(outputs) else self.decode(outputs, **decode_kwargs)
        people = poses.to_list()
        if target_sizes is None:
            return people
        if len(target_sizes) != len(people):
            raise ValueError(f"target_sizes: expected {len(people)} (height, width) pairs, got {len(target_sizes)}.")
        for person, (height, width) in zip(people, target_sizes):
            person["keypoints"] = self._to_original_pixels(person["keypoints"], int(height), int(width))
        return people

    def _to_original_pixels(self, keypoints: torch.Tensor, height: int, width: int) -> torch.Tensor:
        """Invert the placement of an image of original size (height, width): `input_geometry.input_to_original`."""
        if not self.do_resize:
            return keypoints
        return input_to_original(keypoints, (height, width), self.size.longest_edge)


def _placement(
    image_size: tuple[int, int], longest_edge: int, do_resize: bool
) -> tuple[torch.Tensor, tuple[int, int], tuple[int, int]]:
    """The image-to-input matrix, the size to render at and the canvas `(h, w)` to keep of it.

    A resized image is rendered on the S x S training canvas and cut to the part that holds it, so its pixels are
    the identity training view's bit for bit (`affine_grid` samples depend on the output size). Without resizing
    the image is kept as it is.
    """
    if not do_resize:
        return torch.eye(3, dtype=torch.float64), image_size, image_size
    square = (longest_edge, longest_edge)
    return placement_matrix(image_size, longest_edge), square, input_canvas_size(image_size, longest_edge)


def check_decoding_settings(image_processor: PoseImageProcessor, config: PoseConfig) -> None:
    """Raise ValueError where `image_processor` would decode raw outputs otherwise than the model of `config` does.

    The processor keeps its own copy of the decoding settings, so a saved checkpoint's processor can decode raw
    outputs on its own; the model config is the source they must match: `output_stride`, and for associative
    embedding (the family that groups keypoints) `grouping_order`, where the processor's None means index order.
    """
    expected = {"output_stride": config.output_stride}
    got = {"output_stride": image_processor.output_stride}
    if config.model_type == AssociativeEmbeddingConfig.model_type:
        expected["grouping_order"] = list(config.grouping_order)
        got["grouping_order"] = list(image_processor.grouping_order or range(config.num_keypoints))
    wrong = [f"{name}={got[name]} but the model config has {expected[name]}" for name in expected
             if got[name] != expected[name]]
    if wrong:
        raise ValueError(
            f"The image processor would decode otherwise than the model: {'; '.join(wrong)}. Build it from the "
            "config: PoseImageProcessor(output_stride=config.output_stride, grouping_order=config.grouping_order)."
        )


def _is_decoded(outputs) -> bool:
    """True for `DecodedPoses`, by name: under trust_remote_code the model and the processor each load their own
    copy of the codec module, so the model's `DecodedPoses` is not an instance of the processor's class."""
    return type(outputs).__name__ == DecodedPoses.__name__


def pad_to_multiple(images: list[torch.Tensor], size_divisor: int) -> torch.Tensor:
    """Zero-pad `[C, h, w]` images at the bottom/right to the batch's largest size rounded up to `size_divisor`."""
    height = math.ceil(max(image.shape[-2] for image in images) / size_divisor) * size_divisor
    width = math.ceil(max(image.shape[-1] for image in images) / size_divisor) * size_divisor
    return torch.stack([F.pad(image, (0, width - image.shape[-1], 0, height - image.shape[-2])) for image in images])


__all__ = ["PoseImageProcessor", "check_decoding_settings"]
