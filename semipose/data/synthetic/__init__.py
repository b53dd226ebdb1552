"""Synthetic multi-person pose images: the built-in default data of semipose.

No dataset can be downloaded here, so every demo, test and benchmark trains on images made by
this package. Each image holds 1-8 people posed from a 3D kinematic body model with human joint
ranges (spine bend and twist; shoulders and hips by plane and angle of elevation, humeral and hip
rotation; elbows and knees that bend one way), seen by an orthographic camera from any side and
projected to the image. People differ in size, build, skin, hair and clothing colors; they overlap
(drawn far to near), leave the frame at its borders, and stand in front of cluttered backgrounds
with limb-like sticks. Blur and noise finish the picture.

Annotations follow COCO: `(x, y, v)` per keypoint with v = 2 visible, 1 hidden behind a nearer
person or body part, 0 not labeled (outside the frame, with x = y = 0, or a face point turned away
from the camera, as COCO annotators leave those). The same body model emits the COCO-17 or the
CrowdPose-14 skeleton (`semipose.skeletons`); CrowdPose images carry a `crowdIndex`. A person's
`segmentation` is the compressed RLE of its whole figure inside the frame (amodal: people in front
do not cut it), `area` its pixel count and `bbox` its extent, so OKS scales follow body size.

Determinism: image `i` of a split is drawn from `numpy.random.default_rng([seed, split, i])`
alone, so it does not depend on the other images nor on how many there are.

Layout, in the order one image is made: `config` (settings), `pose_prior` (joint angles),
`body` (3D points), `parts` (what is drawn of a person), `outlines` (2D polygons), `colors`,
`figures` (people in pixels, placed), `background` (clutter), `rendering` (label map, picture,
visibility), `scene` (one image and its annotations), then files: `coco_files` (PNG + COCO json
per split), `dataset_cache` (the keyed dataset folder) and `contact_sheet` (a preview grid).

Example:

```python
>>> from semipose.data.synthetic import SyntheticConfig, generate_scene
>>> config = SyntheticConfig(image_size=128, people=(1, 4), skeleton="crowdpose", num_train=200)
>>> scene = generate_scene(config, "train", 0)
>>> scene.image.size, scene.keypoints.shape[1:]
((128, 128), (14, 3))

```

`prepare_synthetic_dataset("data/synthetic", config)` then renders all 400 images of `config` and writes
the dataset folder that `datasets.load_dataset("data/synthetic", "ratio_10", split="labeled")` reads.
"""

from .body import BODY_KEYPOINTS, body_points, sample_body_proportions
from .coco_files import IMAGE_ID_STRIDE, coco_categories, write_coco_split
from .colors import sample_part_colors
from .config import GENERATOR_VERSION, MAX_PEOPLE, SyntheticConfig
from .contact_sheet import render_contact_sheet
from .dataset_cache import prepare_synthetic_dataset, synthetic_dataset_dir, synthetic_source_dir
from .figures import Figures, make_figures, sample_figures
from .pose_prior import sample_pose_angles
from .scene import SPLITS, SyntheticScene, crowd_index, generate_scene, render_scene

__all__ = [
    "BODY_KEYPOINTS",
    "GENERATOR_VERSION",
    "IMAGE_ID_STRIDE",
    "MAX_PEOPLE",
    "SPLITS",
    "Figures",
    "SyntheticConfig",
    "SyntheticScene",
    "body_points",
    "coco_categories",
    "crowd_index",
    "generate_scene",
    "make_figures",
    "prepare_synthetic_dataset",
    "render_contact_sheet",
    "render_scene",
    "sample_body_proportions",
    "sample_figures",
    "sample_part_colors",
    "sample_pose_angles",
    "synthetic_dataset_dir",
    "synthetic_source_dir",
    "write_coco_split",
]
