"""Videos as unlabeled data: frames sampled by a recorded rule and extracted once, as PNG files, into the dataset
folder, so that a video's frames join the unlabeled splits as extra images do and training needs no change.

The rule (`VideoSampling`) takes every N-th frame of each video (`every=N`, indices 0, N, 2N, ...; the default,
N = `DEFAULT_VIDEO_EVERY`) or K frames per video spread evenly (`frames=K`): the video's n frames are cut into K
strides `[floor(i n / K), floor((i + 1) n / K))` and one frame is drawn uniformly within each stride by
`numpy.random.default_rng([seed, crc32(name)])`, the seeded jitter: the same seed and video give the same frames,
whatever other videos are listed. `sample_video` decodes the whole video once (PyAV, `semipose.video`) to count its
frames, read their timestamps and prove it decodes, before anything is written; `extract_video_frames` decodes it
again inside the dataset folder's atomic write and saves the sampled frames as
`video_frames/<name>/<frame index:06d>.png`.

Why extract instead of decoding at training time (measured on this machine, 2 shared CPU cores, the fixture
`mirror-mouse/videos/test_vid.mp4`: 994 frames of 396 x 406, H.264 with a keyframe every ~240 frames):
sequential decode to RGB runs at ~905 frames/s (~1840 frames/s without the RGB conversion), but training draws
frames in shuffled order, and seeking to a random frame (back to its keyframe, then decoding forward) gives
~11 frames/s, far below the main job's ~50-110 unlabeled images/s (16 per step at 3-7 steps/s). Reading the
extracted PNGs back runs at ~255 images/s per core, like any image folder. Extraction costs one extra
sequential decode plus ~30 ms of PNG encoding per sampled frame (78 kB per frame here), once.

Example (the fixture video; run by the tests):

```python
from semipose.data.video_frames import VideoSampling, extract_video_frames, sample_video
video = sample_video("test_vid.mp4", VideoSampling(every=100), name="test_vid")
video.indices, video.timestamps[1]  # (0, 100, ..., 900), 0.4 (= 100 / 250 fps)
extract_video_frames([video], "folder")  # folder/video_frames/test_vid/000000.png, ..., 000900.png
```
"""

from __future__ import annotations

import logging
import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..video_io import VideoReader, is_video_file, read_video_frames

logger = logging.getLogger(__name__)

VIDEO_FRAMES_DIR = "video_frames"
"""Sub-folder of the dataset folder that holds the extracted frames, one folder per video."""
DEFAULT_VIDEO_EVERY = 10
"""Frame step of the default rule: every 10th frame (25 frames/s of a 250 fps video)."""


@dataclass(frozen=True)
class VideoSampling:
    """Which frames of each video become unlabeled images: every `every`-th, or `frames` per video spread evenly
    with a jitter seeded by `seed` (see the module docstring). Neither set: every `DEFAULT_VIDEO_EVERY`-th.

    Raises:
        ValueError: both set, or a value below 1.
    """

    every: int | None = None
    frames: int | None = None
    seed: int = 0

    def __post_init__(self):
        if self.every is not None and self.frames is not None:
            raise ValueError(f"video sampling: every={self.every} and frames={self.frames} both set; expected one "
                             f"rule (--video-every or --video-frames).")
        if self.every is None and self.frames is None:
            object.__setattr__(self, "every", DEFAULT_VIDEO_EVERY)
        for option, value in (("every", self.every), ("frames", self.frames)):
            if value is not None and (not isinstance(value, int) or value < 1):
                raise ValueError(f"video sampling: {option} (--video-{option}) must be an integer >= 1, got "
                                 f"{value!r}.")

    def indices(self, num_frames: int, name: str, source: str | None = None) -> list[int]:
        """The sorted frame indices to take from a video of `num_frames` frames named `name` (with `seed`, its
        jitter's seed: the name, not the path, so that the frames do not depend on where the video lies).

        Raises:
            ValueError: `frames` asks for more frames than the video has (naming `source`, default `name`).
        """
        if self.every is not None:
            return list(range(0, num_frames, self.every))
        if num_frames < self.frames:
            raise ValueError(f"{source or name}: {num_frames} frames, fewer than the {self.frames} that "
                             f"--video-frames asks for; expected a smaller --video-frames or --video-every.")
        rng = np.random.default_rng([self.seed, zlib.crc32(name.encode())])
        bounds = [i * num_frames // self.frames for i in range(self.frames + 1)]
        return [int(rng.integers(low, high)) for low, high in zip(bounds[:-1], bounds[1:])]

    def to_dict(self) -> dict[str, Any]:
        """The rule as recorded in the dataset folder's metadata."""
        if self.every is not None:
            return {"every": self.every}
        return {"frames": self.frames, "seed": self.seed, "jitter": "one uniform draw per stride"}


@dataclass(frozen=True)
class SampledVideo:
    """A decoded video's facts and the frames the rule took: their indices from 0 and timestamps in seconds."""

    path: Path
    name: str
    width: int
    height: int
    fps: float
    num_frames: int
    indices: tuple[int, ...]
    timestamps: tuple[float, ...]

    def frame_file(self, index: int) -> str:
        """Where frame `index` is extracted, relative to the dataset folder."""
        return f"{VIDEO_FRAMES_DIR}/{self.name}/{index:06d}.png"

    def to_dict(self) -> dict[str, Any]:
        """What the metadata records of the video (its absolute path, size, frame count and indices taken)."""
        return {"video": str(self.path), "frames_dir": f"{VIDEO_FRAMES_DIR}/{self.name}", "width": self.width,
                "height": self.height, "fps": self.fps, "num_frames": self.num_frames,
                "frame_indices": list(self.indices)}


def sample_video(path: str | Path, sampling: VideoSampling, *, name: str) -> SampledVideo:
    """Decode the video at `path` once and choose its frames by `sampling`; `name` is its frames' sub-folder.

    Raises:
        FileNotFoundError: no such file.
        ValueError (`semipose.video.UnreadableVideoError`): not a video, no frames, or a corrupt or truncated one,
            naming the file; fewer frames than `sampling.frames`.
    """
    path = Path(path).resolve()
    with VideoReader(path) as reader:
        info = reader.info
        timestamps = [round(frame.timestamp, 6) for frame in reader]
    indices = sampling.indices(len(timestamps), name, source=str(path))
    return SampledVideo(path, name, info.width, info.height, float(info.fps), len(timestamps), tuple(indices),
                        tuple(timestamps[index] for index in indices))


def extract_video_frames(videos: Sequence[SampledVideo], folder: str | Path) -> list[Path]:
    """Save the sampled frames of each video as PNG files under `folder` (see `SampledVideo.frame_file`).

    Returns:
        The files written, in order.

    Raises:
        ValueError: a video that no longer decodes or holds fewer frames than when it was sampled.
    """
    written = []
    for video in videos:
        wanted = set(video.indices)
        (Path(folder) / VIDEO_FRAMES_DIR / video.name).mkdir(parents=True, exist_ok=True)
        for frame in read_video_frames(video.path):
            if frame.index in wanted:
                written.append(Path(folder) / video.frame_file(frame.index))
                frame.image.save(written[-1])
                wanted.discard(frame.index)
            if not wanted:
                break
        if wanted:
            raise ValueError(f"{video.path}: frames {sorted(wanted)} are gone since it was sampled; expected "
                             f"{video.num_frames} frames.")
    return written


def split_media(paths: Sequence[Path], image_extensions: Sequence[str]) -> tuple[list[Path], list[Path]]:
    """The image files and the video files among `paths` (other files left out)."""
    images = [path for path in paths if path.suffix.lower() in image_extensions]
    return images, [path for path in paths if is_video_file(path)]


__all__ = ["DEFAULT_VIDEO_EVERY", "VIDEO_FRAMES_DIR", "SampledVideo", "VideoSampling", "extract_video_frames",
           "sample_video", "split_media"]
