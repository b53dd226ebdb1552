"""Video files in and out with PyAV: every frame that decodes, upright, at the time the stream gives it; what broke,
said with the file and the frame reached; H.264 out at the frames' own times.

Reading (`VideoReader`, `read_video_frames`) keeps what a damaged file still holds:

- A packet that does not decode (a file cut mid-frame, a corrupt stretch) is counted and skipped, and decoding goes
  on, so the frames the decoder still holds and those after a corrupt stretch are kept. Frames are numbered in the
  order they decode; their timestamps are the stream's (pts), so a variable frame rate or a lost frame keeps true
  times. When the frames fall short of what the container declares (a frame count, or for Matroska the video's
  duration) the file is called truncated; the error, raised after the last frame, names the file and the frame
  reached, and carries `frames_read`.
- An MP4/QuickTime file keeps its index (the `moov` box) at the front (`-movflags faststart`) or, as most recorders
  write it, at the end. Cut short, the first kind is read up to the cut; the second has lost its index and no frame
  can be found, and the error says so instead of FFmpeg's "Invalid data found".
- A display matrix (a phone held upright) is applied: frames come turned by the multiple of 90 degrees it states,
  as players and OpenCV show them, and `VideoInfo` gives the turned size. A mirroring or an angle that is no multiple
  of 90 is refused, naming it.

PyAV bundles FFmpeg, so no system ffmpeg is needed; it is the optional extra `semipose[video]`.

Illustration (not run: needs a video):

```python
from semipose.video_io import UnreadableVideoError, VideoReader, VideoWriter

with VideoReader("clip.mp4") as reader, VideoWriter("copy.mp4", reader.info.width, reader.info.height,
                                                    reader.info.fps) as writer:
    try:
        for frame in reader:  # index, timestamp (s) and RGB image of each frame
            writer.write(frame.image, frame.timestamp)
    except UnreadableVideoError as error:  # raised after the last frame that decoded
        print(error, error.frames_read)  # clip.mp4: truncated or corrupt video, it breaks off at frame 448 ... 448
```
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import PIL.Image

VIDEO_SUFFIXES = frozenset({".mp4", ".m4v", ".mov", ".mkv", ".webm", ".avi", ".mpg", ".mpeg", ".wmv", ".flv", ".ts"})
"""File name suffixes `semipose predict` reads as videos (lower case); every other file is read as an image."""
FALLBACK_FPS = Fraction(25)
"""Frame rate assumed for a stream that states none."""
WRITER_TIME_BASE = Fraction(1, 90000)
"""Time unit of the frames `VideoWriter` writes (MPEG's 90 kHz clock): fine enough for any frame's time."""
UPRIGHT = {0: None, 90: PIL.Image.Transpose.ROTATE_90, 180: PIL.Image.Transpose.ROTATE_180,
           -180: PIL.Image.Transpose.ROTATE_180, -90: PIL.Image.Transpose.ROTATE_270}
"""The turn that stands a frame upright, by the counter-clockwise rotation (degrees) of its display matrix."""


class UnreadableVideoError(ValueError):
    """A video file PyAV cannot open, that holds no frames, or that breaks off after `frames_read` frames."""

    def __init__(self, message: str, frames_read: int = 0):
        super().__init__(message)
        self.frames_read = frames_read


def is_video_file(path: str | Path) -> bool:
    """True when the file name ends in one of `VIDEO_SUFFIXES`."""
    return Path(path).suffix.lower() in VIDEO_SUFFIXES


def import_av() -> ModuleType:
    """The `av` module (PyAV), or ImportError saying how to install it."""
    try:
        import av
    except ImportError as error:
        raise ImportError("Reading and writing videos needs PyAV: pip install 'semipose[video]'.") from error
    return av


@dataclass(frozen=True)
class VideoInfo:
    """What a video's first video stream says about itself, with its frames as `VideoReader` gives them."""

    path: Path
    width: int
    """Width of the frames as given, upright (the stored height when the display matrix turns them by 90 degrees)."""
    height: int
    fps: Fraction
    """The stream's average frame rate (frames over duration; a variable-rate stream's frames keep their own times)."""
    num_frames: int
    """Frame count the container declares; 0 when it declares none (e.g. Matroska)."""
    rotation: int = 0
    """Degrees (counter-clockwise) the frames were turned to stand upright, from the stream's display matrix."""


@dataclass(frozen=True)
class Frame:
    """One decoded frame: its index (its place among the frames that decoded, from 0), its presentation time in
    seconds (the stream's) and its RGB image, upright."""

    index: int
    timestamp: float
    image: PIL.Image.Image


@dataclass
class _DecodeTrouble:
    """What went wrong while decoding: packets that did not decode (how many, how many frames had decoded before
    the first, and its error), and the error that stopped the demuxer (None: read to the end of the file)."""

    lost_packets: int = 0
    first_lost_after: int = 0
    first_error: str = ""
    stopped_by: str | None = None


class VideoReader:
    """The frames of one video file, in order, as upright RGB images; a context manager that closes the file.

    The first frame is decoded on opening (to learn its display matrix), so a file without one fails there,
    before anything else is done with it. The frames can be iterated once.

    Raises (on opening):
        FileNotFoundError: no such file.
        UnreadableVideoError: an empty file, not a video PyAV can open (or an MP4 whose index is missing: the file
            looks truncated), no video stream, no frame that decodes, or a display matrix that mirrors the frames
            or turns them by an angle that is no multiple of 90 degrees.
    Raises (after the last frame):
        UnreadableVideoError: the frames fall short of what the container declares (truncated or corrupt file), or
            some packets did not decode; `frames_read` frames, every one that decoded, were yielded before.
    """

    def __init__(self, path: str | Path):
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"{self.path}: no such video file.")
        self._av = import_av()
        self._container = _open_container(self._av, self.path)
        try:
            self._start()
        except BaseException:
            self._container.close()
            raise

    def _start(self) -> None:
        """Find the video stream, decode its first frame, and state the video's `info`."""
        if not self._container.streams.video:
            raise UnreadableVideoError(f"{self.path}: no video frames, the file holds no video stream.")
        stream = self._container.streams.video[0]
        self._trouble, self._decoded = _DecodeTrouble(), 0
        self._frames = self._decode(stream)
        self._first = next(self._frames, None)
        if self._first is None:
            lost = (f" ({self._trouble.lost_packets} packets did not decode: {self._trouble.first_error})"
                    if self._trouble.lost_packets else "")
            raise UnreadableVideoError(f"{self.path}: no video frames, expected at least one{lost}.")
        rotation = _upright_rotation(self.path, self._first)
        width, height = (stream.height, stream.width) if rotation in (90, -90) else (stream.width, stream.height)
        fps = Fraction(stream.average_rate or stream.guessed_rate or FALLBACK_FPS)
        self.info = VideoInfo(self.path, width, height, fps, stream.frames, rotation)
        self._declared_end = _declared_end(stream)

    def __enter__(self) -> VideoReader:
        return self

    def __exit__(self, *exc_info) -> None:
        self._container.close()

    def __iter__(self) -> Iterator[Frame]:
        if self._first is None:
            raise ValueError(f"{self.path}: its frames were read already; expected a new VideoReader to read them "
                             f"again.")
        upright, period = UPRIGHT[self.info.rotation], 1 / self.info.fps
        first, self._first = self._first, None
        count, timestamp = 0, None
        for frame in itertools.chain([first], self._frames):
            timestamp = frame.time if frame.time is not None else (0.0 if timestamp is None else timestamp + period)
            image = frame.to_image()
            yield Frame(count, float(timestamp), image.transpose(upright) if upright is not None else image)
            count += 1
        message = self._trouble_message(count, timestamp)
        if message is not None:
            raise UnreadableVideoError(message, frames_read=count)

    def _decode(self, stream: Any) -> Iterator[Any]:
        """The stream's decoded frames (PyAV's); packets that do not decode are counted in `_trouble` and skipped,
        and a demuxer that stops on an error has the decoder's held frames flushed out."""
        try:
            for packet in self._container.demux(stream):
                yield from self._decode_packet(packet.decode)
        except self._av.error.FFmpegError as error:
            self._trouble.stopped_by = _reason(error)
            yield from self._decode_packet(lambda: stream.codec_context.decode(None))

    def _decode_packet(self, decode) -> list[Any]:
        try:
            frames = decode()
        except self._av.error.FFmpegError as error:  # a packet cut short or corrupt: the next ones may decode
            trouble = self._trouble
            if not trouble.lost_packets:
                trouble.first_lost_after, trouble.first_error = self._decoded, _reason(error)
            trouble.lost_packets += 1
            return []
        self._decoded += len(frames)
        return frames

    def _trouble_message(self, count: int, last_timestamp: float | None) -> str | None:
        """Why the frames read are not the whole video (None when they are): it ends early (truncated), or some of
        its packets did not decode (corrupt)."""
        trouble, info = self._trouble, self.info
        if self._ends_early(count + trouble.lost_packets, last_timestamp) or trouble.stopped_by is not None:
            declared = f" of the {info.num_frames} it declares" if info.num_frames else (
                f", at {last_timestamp + 1 / info.fps:.3f} s of the {self._declared_end:.3f} s it declares"
                if self._declared_end is not None else "")
            reason = trouble.stopped_by or (f"a packet did not decode: {trouble.first_error}"
                                            if trouble.lost_packets else "end of file")
            return f"{self.path}: truncated or corrupt video, it breaks off at frame {count}{declared} ({reason})."
        if trouble.lost_packets:
            return (f"{self.path}: corrupt video, {trouble.lost_packets} frame(s) did not decode, the first after "
                    f"frame {trouble.first_lost_after} ({trouble.first_error}); the {count} frames that decoded are "
                    f"numbered in order, each with the stream's timestamp.")
        return None

    def _ends_early(self, frames_seen: int, last_timestamp: float | None) -> bool:
        """Fewer frames than the container declares; with no count declared, frames that end more than half a frame
        before the duration it declares."""
        if self.info.num_frames:
            return frames_seen < self.info.num_frames
        if self._declared_end is None or last_timestamp is None:
            return False
        return last_timestamp + 1.5 / self.info.fps < self._declared_end


def read_video_frames(path: str | Path) -> Iterator[Frame]:
    """The frames of the video at `path` (see `VideoReader` for the errors)."""
    with VideoReader(path) as reader:
        yield from reader


def _reason(error: Exception) -> str:
    """FFmpeg's words for an error, without PyAV's errno and function name."""
    return getattr(error, "strerror", None) or str(error)


def _open_container(av: ModuleType, path: Path) -> Any:
    """The opened container; UnreadableVideoError for an empty file, a truncated MP4 and any file FFmpeg cannot
    open."""
    if path.stat().st_size == 0:
        raise UnreadableVideoError(f"{path}: empty file (0 bytes); expected a video.")
    try:
        return av.open(str(path))
    except av.error.FFmpegError as error:
        missing_index = _missing_mp4_index(path)
        if missing_index is not None:
            raise UnreadableVideoError(missing_index) from error
        raise UnreadableVideoError(
            f"{path}: not a readable video ({_reason(error)}); expected a video file FFmpeg can decode "
            f"({', '.join(sorted(VIDEO_SUFFIXES))})."
        ) from error


def _missing_mp4_index(path: Path) -> str | None:
    """Why an MP4/QuickTime file with media data but no index cannot be read (None for any other file)."""
    boxes = _top_level_boxes(path)
    kinds = [kind for kind, _, _ in boxes]
    if not kinds or kinds[0] != "ftyp" or "mdat" not in kinds or "moov" in kinds:
        return None
    _, start, size = boxes[kinds.index("mdat")]
    present = min(size, path.stat().st_size - start)
    return (f"{path}: not a readable video: it looks truncated, its index (the MP4 'moov' box, which most recorders "
            f"write last) is missing, so no frame can be found in its {present} bytes of media data"
            f"{f' (of the {size} its mdat box declares)' if present < size else ''}. Expected a complete file; "
            f"recorded with the index first (ffmpeg -movflags faststart), a cut file stays readable up to the cut, "
            f"and untrunc can rebuild a lost index from a complete video of the same camera.")


def _top_level_boxes(path: Path) -> list[tuple[str, int, int]]:
    """(type, offset, declared size) of the top-level boxes of an MP4/QuickTime file, as far as their headers read
    as boxes (none for other files)."""
    boxes, offset, end = [], 0, path.stat().st_size
    with path.open("rb") as file:
        while offset + 8 <= end:
            file.seek(offset)
            header = file.read(16)
            size, kind = int.from_bytes(header[:4], "big"), header[4:8]
            if size == 1 and len(header) == 16:
                size = int.from_bytes(header[8:16], "big")
            elif size == 0:  # the last box, to the end of the file
                size = end - offset
            if size < 8 or not all(32 < byte < 127 for byte in kind):
                break
            boxes.append((kind.decode("ascii"), offset, size))
            offset += size
    return boxes


def _upright_rotation(path: Path, frame: Any) -> int:
    """The counter-clockwise turn (a key of `UPRIGHT`) the frame's display matrix asks for; 0 without one.

    The matrix's rotation is read as FFmpeg's `av_display_rotation_get` reads it (PyAV's `VideoFrame.rotation`,
    which PyAV 14 lacks); a mirroring (negative determinant) and an angle no multiple of 90 are refused."""
    side_data = frame.side_data.get("DISPLAYMATRIX")
    if side_data is None:
        return 0
    a, b, _, c, d = np.frombuffer(bytes(side_data), dtype="<i4")[:5].astype(np.float64)
    if a * d - b * c < 0:
        raise UnreadableVideoError(f"{path}: its display matrix mirrors the frames; expected one that only turns "
                                   f"them (re-encode the video with ffmpeg, which applies the matrix).")
    if a * d - b * c == 0:  # no usable matrix: FFmpeg reads no rotation from it either
        return 0
    rotation = -np.degrees(np.arctan2(b / np.hypot(b, d), a / np.hypot(a, c)))
    turn = int(round(rotation))
    if turn not in UPRIGHT or abs(rotation - turn) > 0.01:
        raise UnreadableVideoError(f"{path}: its display matrix turns the frames by {rotation:g} degrees; expected a "
                                   f"multiple of 90 degrees (re-encode the video with ffmpeg, which applies the "
                                   f"matrix).")
    return 180 if turn == -180 else turn


def _declared_end(stream: Any) -> float | None:
    """When the video stream declares it ends, in seconds: its start plus its duration, from the stream or (Matroska)
    its DURATION tag; None when it declares none."""
    start = float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0
    if stream.duration:
        return start + float(stream.duration * stream.time_base)
    tag = stream.metadata.get("DURATION")
    try:
        hours, minutes, seconds = tag.split(":")
        return start + int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except (AttributeError, ValueError):
        return None


class VideoWriter:
    """Writes RGB images as an H.264 video of a given size and frame rate; the file is created at the first frame.

    Each frame is placed at its timestamp (seconds) measured from the first one written, so a variable frame rate
    or a lost frame keeps its times; frames written without a timestamp follow at the frame rate. Even sizes are
    encoded in yuv420p (what every player reads); odd ones, which yuv420p cannot hold, in yuv444p.
    """

    def __init__(self, path: str | Path, width: int, height: int, fps: Fraction):
        self.path, self.width, self.height, self.fps = Path(path), width, height, fps
        self._av = import_av()
        self._container = None
        self._stream = None
        self._start, self._last_pts, self._written = None, None, 0

    def write(self, image: PIL.Image.Image, timestamp: float | None = None) -> None:
        """Add `image` at `timestamp` (seconds in the source; None: one frame after the last); a timestamp that
        does not increase is taken as one frame on, as the encoder needs increasing times."""
        if self._container is None:
            self._open()
        frame = self._av.VideoFrame.from_image(image.convert("RGB"))
        frame.pts, frame.time_base = self._pts(timestamp), WRITER_TIME_BASE
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self._written += 1

    def _pts(self, timestamp: float | None) -> int:
        step = round(1 / self.fps / WRITER_TIME_BASE)
        if timestamp is None:
            pts = self._written * step if self._last_pts is None else self._last_pts + step
        else:
            self._start = timestamp if self._start is None else self._start
            pts = round((timestamp - self._start) / WRITER_TIME_BASE)
        if self._last_pts is not None and pts <= self._last_pts:
            pts = self._last_pts + step
        self._last_pts = pts
        return pts

    def _open(self) -> None:
        self._container = self._av.open(str(self.path), "w")
        self._stream = self._container.add_stream("libx264", rate=self.fps)
        self._stream.codec_context.time_base = WRITER_TIME_BASE
        self._stream.width, self._stream.height = self.width, self.height
        self._stream.pix_fmt = "yuv420p" if self.width % 2 == 0 and self.height % 2 == 0 else "yuv444p"

    def close(self) -> None:
        """Flush the encoder and close the file (nothing to do when no frame was written)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None

    def __enter__(self) -> VideoWriter:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


__all__ = ["FALLBACK_FPS", "VIDEO_SUFFIXES", "Frame", "UnreadableVideoError", "VideoInfo", "VideoReader",
           "VideoWriter", "import_av", "is_video_file", "read_video_frames"]
