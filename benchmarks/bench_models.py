"""Model speed on CPU: decoding time per image by crowd size, inference throughput with its post-processing share,
and the network's throughput in torch vs ONNX Runtime.

Four measurements, the first three for both families (associative embedding and center + offset):

- `decode`: milliseconds per image of `model.decode` (the codec decoder with the config's settings),
  one image per call and 16 per call (as training and evaluation decode), on IDEAL maps holding 1,
  10 or 30 people, at 256 and 512 input (64 and 128 px maps at stride 4). Ideal maps are the codec's
  own training targets (AE tags = person id), so the decoder sees as many peaks as a well-trained
  model produces; a random-init model's maps decode to nobody and would time an empty loop. Where
  mmpose is importable (a benchmark-only extra, see below), its own codecs decode the same maps in
  the same process, alternating with ours run by run, one image at a time as they are written:
  `AssociativeEmbedding.batch_decode` and `SPR.decode` followed by `nearby_joints_nms` (what mmpose's
  DEKR head runs). Center-offset is also timed with `refine=False` (`semipose_unrefined`: offsets only,
  SPR's rule, the like-for-like comparison; the default snaps keypoints to heatmap peaks). Each record
  also says how many people each decoder found in the first image and how far (input pixels, mean over
  matched people's keypoints) they are from the truth, mmpose's keypoints taken to our
  pixel-center convention (`x + (s - 1) / 2`).
- `inference`: images/s of forward + post-processing at 256 and 512 input, batch `--batch-size`,
  and the share of that time spent in post-processing (`model.decode` on ideal maps with
  `--people` people at the same map size + `PoseImageProcessor.post_process_pose_estimation`
  mapping to original pixels).
- `backends`: images/s of the network (backbone, neck, heads; decoding is the same code for both) in
  torch and in ONNX Runtime on the file `semipose export` writes, at 256 and 512 input, the same
  thread count for both, timed alternately in one process (one torch run, one onnxruntime run, ...),
  with the ratio of the medians and the 1-minute load average before and after each record.
- `photo`: seconds and peak memory (RSS) of `PoseEstimator` on one 6000 x 4000 JPEG (a fixture photo
  enlarged) at 512 input, center-offset `regnetx_002`, decoding the file whole and reduced (what
  `semipose.inference.open_image` does for an input of 512),
  each in its own process so the peaks are its own, file reading included; with the mean absolute
  difference of the two model inputs (normalized units).

People are random boxes (15-35 % of the image height) with the K keypoints uniform inside. Each
number is the median of `--repeats` timed runs after `--warmup` untimed ones (the first few CPU
forwards at a new input shape are up to 20x slower: measured 1.8, 0.7, 0.5, 0.8 s, then 0.08 s);
`best_*` fields keep the fastest run, the better estimate when other jobs share the cores (the
same decode measured 3 ms and 90 ms per image minutes apart on a busy 2-core machine).
Results go to `benchmarks/results/bench_models.json` with the machine, its load and the library
versions; re-running only some `--measurements` keeps the records of the others, with the machine
they ran on (`machine_of_kept_results`).

mmpose is not a dependency of semipose. It imports without compiled mmcv ops for its codecs; one
way, kept out of the project's environment:

```bash
pip install --target /tmp/mmpose_site --no-deps mmpose mmengine "mmcv-lite==2.1.0" \
    opencv-python-headless addict yapf platformdirs termcolor json_tricks munkres
pip install --target /tmp/mmpose_build cython  # xtcocotools' wheel is built for numpy 1: build it here
PYTHONPATH=/tmp/mmpose_build pip install --target /tmp/mmpose_site --no-deps --no-build-isolation \
    --no-binary xtcocotools xtcocotools
PYTHONPATH=$PWD:/tmp/mmpose_site python -m benchmarks.bench_models --torch-threads 1
```

Usage:

```bash
python -m benchmarks.bench_models                      # regnetx_002 and resnet50, a few minutes on 2 cores
python -m benchmarks.bench_models --backbones regnetx_002 --repeats 2   # quick check
python -m benchmarks.bench_models --measurements decode --torch-threads 1   # decoding only
python -m benchmarks.bench_models --measurements backends   # only torch vs onnxruntime (needs semipose[deploy])
python -m benchmarks.bench_models --measurements photo      # a 6000 x 4000 photo, decoded whole and reduced
```
"""

from __future__ import annotations

import argparse
import importlib.metadata
import itertools
import json
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import PIL.Image
import timm
import torch
import transformers
from scipy.optimize import linear_sum_assignment

from benchmarks.machine_info import machine_info, run_measuring_peak_memory
from semipose.modeling import (
    AssociativeEmbeddingConfig,
    AssociativeEmbeddingForPoseEstimation,
    AssociativeEmbeddingOutput,
    CenterOffsetConfig,
    CenterOffsetForPoseEstimation,
    CenterOffsetOutput,
    PoseImageProcessor,
)
from semipose.modeling.codec_associative_embedding import encode_associative_embedding_targets
from semipose.modeling.codec_center_offset import encode_center_offset_targets
from semipose.modeling.codec_common import render_gaussian_heatmaps

REPO = Path(__file__).resolve().parents[1]

try:  # benchmark-only, optional: mmpose's own codecs, for a side-by-side decode timing
    from mmpose.codecs import SPR, AssociativeEmbedding
    from mmpose.evaluation.functional import nearby_joints_nms

    MMPOSE = SimpleNamespace(AssociativeEmbedding=AssociativeEmbedding, SPR=SPR, nearby_joints_nms=nearby_joints_nms)
    MMPOSE_VERSION = importlib.metadata.version("mmpose")
except ImportError:
    MMPOSE, MMPOSE_VERSION = None, None

RESULTS = REPO / "benchmarks" / "results" / "bench_models.json"
FAMILIES = {
    "associative_embedding": (AssociativeEmbeddingConfig, AssociativeEmbeddingForPoseEstimation),
    "center_offset": (CenterOffsetConfig, CenterOffsetForPoseEstimation),
}
DECODE_INPUT_SIZES = (256, 512)  # 64 and 128 px maps at stride 4
DECODE_PEOPLE = (1, 10, 30)
DECODE_BATCH_SIZES = (1, 16)  # one image per call, as mmpose's codecs decode; a batch, as training and evaluation do
INFERENCE_INPUT_SIZES = (256, 512)
TAG_SPACING = 2.0  # ideal AE tags: person m has tag m * TAG_SPACING, well beyond the tag threshold


def random_people(batch: int, people: int, size: int, num_keypoints: int, seed: int = 0) -> torch.Tensor:
    """`[batch, people, K, 3]` keypoints: per person a random box, its keypoints uniform inside, all labeled."""
    generator = torch.Generator().manual_seed(seed)
    heights = size * (0.15 + 0.2 * torch.rand(batch, people, 1, 1, generator=generator))
    corners = (size - heights) * torch.rand(batch, people, 1, 2, generator=generator)
    inside = torch.rand(batch, people, num_keypoints, 2, generator=generator) * heights * torch.tensor([0.5, 1.0])
    return torch.cat([corners + inside, torch.full((batch, people, num_keypoints, 1), 2.0)], dim=-1)


def ideal_tags(keypoints: torch.Tensor, heatmap_size: tuple[int, int], stride: int, sigma: float) -> torch.Tensor:
    """`[B, K, h, w]` tags: at each pixel, `TAG_SPACING` x the id of the person whose Gaussian is strongest there."""
    batch, people, num_keypoints, _ = keypoints.shape
    per_person = render_gaussian_heatmaps(
        keypoints.reshape(batch * people, 1, num_keypoints, 3), heatmap_size, stride=stride, sigma=sigma
    ).view(batch, people, num_keypoints, *heatmap_size)
    return per_person.argmax(dim=1).float() * TAG_SPACING


def ideal_outputs(family: str, keypoints: torch.Tensor, config, input_size: int):
    """The family's output dataclass holding the codec's targets for `keypoints` (what a perfect model predicts)."""
    stride, sigma = config.output_stride, config.heatmap_sigma
    heatmap_size = (input_size // stride, input_size // stride)
    if family == "associative_embedding":
        heatmaps = encode_associative_embedding_targets(keypoints, heatmap_size, stride=stride, sigma=sigma).heatmaps
        return AssociativeEmbeddingOutput(heatmaps=heatmaps, tags=ideal_tags(keypoints, heatmap_size, stride, sigma))
    targets = encode_center_offset_targets(keypoints, heatmap_size, stride=stride, sigma=sigma)
    offsets, _ = targets.offset_maps()
    return CenterOffsetOutput(heatmaps=targets.heatmaps, center_heatmap=targets.center_heatmap, offsets=offsets)


def median_seconds(function: Callable[[], object], repeats: int, warmup: int) -> tuple[float, list[float]]:
    """Median wall time of `function` over `repeats` runs after `warmup` untimed runs, and the runs."""
    for _ in range(warmup):
        function()
    runs = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs), runs


def build_model(family: str, backbone: str, **config_overrides) -> torch.nn.Module:
    config_class, model_class = FAMILIES[family]
    return model_class(config_class(backbone=backbone, **config_overrides)).eval()


def measure_decode(args: argparse.Namespace) -> list[dict]:
    """Milliseconds per image (1 or 16 images per call) of `model.decode`, and of mmpose's codecs where importable,
    on ideal maps with 1, 10 and 30 people at each map size; the decoders alternate run by run."""
    records = []
    for family, batch, size, people in itertools.product(FAMILIES, DECODE_BATCH_SIZES, DECODE_INPUT_SIZES,
                                                         DECODE_PEOPLE):
        model = build_model(family, "regnetx_002")  # decoding does not depend on the backbone
        keypoints = random_people(batch, people, size, model.config.num_keypoints)
        outputs = ideal_outputs(family, keypoints, model.config, size)
        decoders = {"semipose": lambda model=model, outputs=outputs: model.decode(outputs).to_list()[0]["keypoints"]}
        if family == "center_offset":  # without the snapping to heatmap peaks: SPR's rule, the like-for-like timing
            unrefined = build_model(family, "regnetx_002", refine=False)
            decoders["semipose_unrefined"] = (
                lambda model=unrefined, outputs=outputs: model.decode(outputs).to_list()[0]["keypoints"]
            )
        if MMPOSE_VERSION is not None:
            decoders["mmpose"] = mmpose_decoder(family, model.config, size, outputs)
        runs = alternating_runs(decoders, args.repeats, args.warmup)
        record = {"measurement": "decode", "family": family, "people": people, "input_size": size,
                  "heatmap_size": size // model.config.output_stride, "batch_size": batch}
        for name, decode in decoders.items():
            found, error = keypoint_error(decode(), keypoints[0])
            record[name] = {"ms_per_image": round(1000 * statistics.median(runs[name]) / batch, 2),
                            "best_ms_per_image": round(1000 * min(runs[name]) / batch, 2),
                            "people_decoded": found, "mean_keypoint_error_px": error}
        for name in ("semipose", "semipose_unrefined"):
            if "mmpose" in record and name in record:
                ratio = record["mmpose"]["ms_per_image"] / record[name]["ms_per_image"]
                record[f"mmpose_over_{name}"] = round(ratio, 2)
        records.append(record)
        print(f"decode  {family:>21}  batch {batch:2d}  {size // 4:3d} px maps  {people:2d} people  " + "  ".join(
            f"{name} {record[name]['ms_per_image']:6.2f} ms" for name in decoders))
    return records


def alternating_runs(functions: dict[str, Callable[[], object]], repeats: int, warmup: int) -> dict[str, list[float]]:
    """Seconds of each function over `repeats` rounds (after `warmup`), the functions taking turns in each round."""
    for _ in range(warmup):
        for function in functions.values():
            function()
    runs = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.perf_counter()
            function()
            runs[name].append(time.perf_counter() - start)
    return runs


def keypoint_error(found: torch.Tensor, truth: torch.Tensor) -> tuple[int, float | None]:
    """People found, and their mean keypoint distance (input pixels) to the truth `[P, K, 3]` they match
    one-to-one (by total distance); None when nobody was found."""
    found = torch.as_tensor(found, dtype=torch.float32)
    if len(found) == 0:
        return 0, None
    distance = (found.unsqueeze(1) - truth[None, :, :, :2]).norm(dim=-1)  # [found, truth, K]
    rows, cols = linear_sum_assignment(distance.sum(dim=-1).numpy())
    return len(found), round(distance[rows, cols].mean().item(), 3)


def mmpose_decoder(family: str, config, input_size: int, outputs) -> Callable[[], np.ndarray]:
    """mmpose's own decoding of every image of `outputs` (its codecs take one image at a time), returning the
    first image's keypoints `[M, K, 2]` in our input pixels."""
    heatmap_size = input_size // config.output_stride
    sizes = {"input_size": (input_size, input_size), "heatmap_size": (heatmap_size, heatmap_size)}
    shift = (config.output_stride - 1) / 2  # mmpose: x = u * s; semipose: x = (u + 0.5) * s - 0.5
    if family == "associative_embedding":
        codec = MMPOSE.AssociativeEmbedding(
            **sizes, decode_keypoint_order=list(config.grouping_order), decode_topk=config.max_people,
            decode_max_instances=config.max_people, decode_keypoint_thr=config.detection_threshold,
            decode_tag_thr=config.tag_threshold, decode_nms_kernel=config.nms_kernel,
        )
        return lambda: codec.batch_decode(outputs.heatmaps, outputs.tags)[0][0] + shift
    codec = MMPOSE.SPR(**sizes, generate_keypoint_heatmaps=True, decode_nms_kernel=config.nms_kernel,
                       decode_max_instances=config.max_people, decode_thr=config.center_threshold)
    maps = torch.cat([outputs.heatmaps, outputs.center_heatmap], dim=1)  # root heatmap last, as SPR reads it

    def decode_image(index: int) -> np.ndarray:
        keypoints, (_, keypoint_scores) = codec.decode(maps[index], outputs.offsets[index])
        keypoints, keypoint_scores = keypoints.numpy(), keypoint_scores.numpy()
        people = [{"keypoints": person, "score": scores} for person, scores in zip(keypoints, keypoint_scores)]
        keep = MMPOSE.nearby_joints_nms(people, 0.05, score_per_joint=True, max_dets=config.max_people)
        return keypoints[keep] + shift  # DEKR head's pose NMS (distance 0.05, more than K // 2 joints)

    return lambda: [decode_image(index) for index in range(len(maps))][0]


def measure_inference(args: argparse.Namespace) -> list[dict]:
    """Images/s of forward + post-processing, and the post-processing share, per backbone and input size."""
    records = []
    for backbone in args.backbones:
        for family in FAMILIES:
            model = build_model(family, backbone)
            processor = PoseImageProcessor(size=max(INFERENCE_INPUT_SIZES), output_stride=model.config.output_stride)
            for size in INFERENCE_INPUT_SIZES:
                records.append(time_inference(model, processor, family, backbone, size, args))
    return records


def time_inference(model, processor, family: str, backbone: str, size: int, args: argparse.Namespace) -> dict:
    """One inference record: forward and post-processing timed separately on a batch of `size` x `size` images."""
    pixel_values = torch.randn(args.batch_size, 3, size, size)
    keypoints = random_people(args.batch_size, args.people, size, model.config.num_keypoints)
    outputs = ideal_outputs(family, keypoints, model.config, size)
    target_sizes = [(2 * size, 2 * size)] * args.batch_size

    def post_process():
        return processor.post_process_pose_estimation(model.decode(outputs), target_sizes=target_sizes)

    with torch.inference_mode():
        forward, forward_runs = median_seconds(lambda: model(pixel_values), args.repeats, args.warmup)
    post, post_runs = median_seconds(post_process, args.repeats, args.warmup)
    images_per_second = args.batch_size / (forward + post)
    best = args.batch_size / (min(forward_runs) + min(post_runs))
    print(
        f"inference  {family:>21}  {backbone:>12}  input {size}  {images_per_second:6.2f} images/s (best {best:.2f})"
        f"  post-processing {100 * post / (forward + post):4.1f} %"
    )
    return {
        "measurement": "inference", "family": family, "backbone": backbone, "input_size": size,
        "batch_size": args.batch_size, "images_per_second": round(images_per_second, 2),
        "best_images_per_second": round(best, 2), "forward_ms_per_image": round(1000 * forward / args.batch_size, 2),
        "post_processing_ms_per_image": round(1000 * post / args.batch_size, 2),
        "post_processing_share": round(post / (forward + post), 4), "post_processing_people": args.people,
    }


def measure_backends(args: argparse.Namespace) -> list[dict]:
    """Images/s of the network run by torch and by ONNX Runtime (the exported file), per backbone and input size.

    Both backends run in this process with the same thread count, alternating one timed run each, so load
    from other jobs falls on both alike; the ratio of the medians is the number to read.
    """
    from semipose.onnx_export import export_onnx
    from semipose.onnx_runtime import OnnxRuntimePoseModel

    records = []
    with tempfile.TemporaryDirectory() as folder:
        for backbone in args.backbones:
            for family in FAMILIES:
                model = build_model(family, backbone)
                onnx_file = export_onnx(model, Path(folder) / f"{family}_{backbone}.onnx")
                runner = OnnxRuntimePoseModel(onnx_file, model.config, num_threads=torch.get_num_threads())
                for size in INFERENCE_INPUT_SIZES:
                    records.append(time_backends(model, runner, family, backbone, size, args))
    return records


def time_backends(model, runner, family: str, backbone: str, size: int, args: argparse.Namespace) -> dict:
    """One backends record: torch and onnxruntime forwards on the same batch, timed alternately."""
    pixel_values = torch.randn(args.batch_size, 3, size, size)
    backends = {"torch": model, "onnxruntime": runner}
    runs = {name: [] for name in backends}
    load_at_start = os.getloadavg()[0]
    with torch.inference_mode():
        for _ in range(args.warmup):
            for network in backends.values():
                network(pixel_values)
        for _ in range(args.repeats):
            for name, network in backends.items():
                start = time.perf_counter()
                network(pixel_values)
                runs[name].append(time.perf_counter() - start)
    speed = {name: args.batch_size / statistics.median(seconds) for name, seconds in runs.items()}
    ratio = speed["onnxruntime"] / speed["torch"]
    print(f"backends  {family:>21}  {backbone:>12}  input {size}  torch {speed['torch']:6.2f}  onnxruntime "
          f"{speed['onnxruntime']:6.2f} images/s  (onnxruntime / torch = {ratio:.2f})")
    return {
        "measurement": "backends", "family": family, "backbone": backbone, "input_size": size,
        "batch_size": args.batch_size, "threads": torch.get_num_threads(),
        "torch_images_per_second": round(speed["torch"], 2),
        "onnxruntime_images_per_second": round(speed["onnxruntime"], 2),
        "onnxruntime_over_torch": round(ratio, 3),
        "best_torch_images_per_second": round(args.batch_size / min(runs["torch"]), 2),
        "best_onnxruntime_images_per_second": round(args.batch_size / min(runs["onnxruntime"]), 2),
        "load_average_1min": [round(load_at_start, 2), round(os.getloadavg()[0], 2)],
    }


PHOTO_SIZE = (6000, 4000)
PHOTO_INPUT_SIZE = 512
PHOTO_FIXTURE = REPO / "tests" / "fixtures" / "coco" / "000000000785.jpg"


def measure_photo(args: argparse.Namespace) -> list[dict]:
    """One record per decode (whole, reduced) of a 6000 x 4000 JPEG: seconds per call and peak RSS of a fresh
    process running `PoseEstimator` on it, and how far the reduced decode's model input is from the whole one's."""
    from semipose.inference import open_image

    with tempfile.TemporaryDirectory() as folder:
        photo = Path(folder) / "photo.jpg"
        PIL.Image.open(PHOTO_FIXTURE).convert("RGB").resize(PHOTO_SIZE).save(photo, quality=90)
        processor = PoseImageProcessor(size=PHOTO_INPUT_SIZE)
        inputs = {reduced: processor(open_image(photo, PHOTO_INPUT_SIZE if reduced else None),
                                     return_tensors="pt")["pixel_values"] for reduced in (False, True)}
        input_difference = float((inputs[True] - inputs[False]).abs().mean())
        records = []
        for reduced in (False, True):
            child, peak_mb = run_measuring_peak_memory(
                [sys.executable, "-c", f"from benchmarks.bench_models import photo_run; photo_run({str(photo)!r}, "
                                       f"{reduced}, {args.repeats}, {args.torch_threads})"], cwd=REPO, check=True,
            )
            record = {"measurement": "photo", "photo_size": list(PHOTO_SIZE), "input_size": PHOTO_INPUT_SIZE,
                      **json.loads(child.stdout.strip().splitlines()[-1]), "peak_rss_mb": round(peak_mb, 1),
                      "mean_absolute_input_difference_reduced_vs_whole": round(input_difference, 4),
                      "load_average_1min": round(os.getloadavg()[0], 2)}
            print(f"photo     {'reduced' if reduced else 'whole':>8} decode to {record['decoded_size']}: "
                  f"{record['seconds_per_call']:.2f} s per call, peak {record['peak_rss_mb']:.0f} MB")
            records.append(record)
    return records


def photo_run(path: str, reduced: bool, repeats: int, threads: int) -> None:
    """In a fresh process: print one json line, seconds per `PoseEstimator` call on the file at `path` (median of
    `repeats` after one warm-up; read and decoded in every call); its parent measures its peak memory."""
    from semipose.inference import PoseEstimator, open_image

    torch.set_num_threads(threads)
    estimator = PoseEstimator(build_model("center_offset", "regnetx_002"), PoseImageProcessor(size=PHOTO_INPUT_SIZE))
    longest_edge = PHOTO_INPUT_SIZE if reduced else None
    seconds, _ = median_seconds(lambda: estimator(open_image(path, longest_edge)), repeats, warmup=1)
    print(json.dumps({"decode": "reduced" if reduced else "whole", "seconds_per_call": round(seconds, 3),
                      "decoded_size": list(open_image(path, longest_edge).size), "threads": threads}))


MEASUREMENTS: dict[str, Callable[[argparse.Namespace], list[dict]]] = {
    "decode": measure_decode, "inference": measure_inference, "backends": measure_backends, "photo": measure_photo,
}


def kept_results(args: argparse.Namespace) -> dict:
    """The records of `args.output` whose measurement is not re-run now (`results`), and the machine they ran on
    (`machine_of_kept_results`); nothing when every measurement is re-run."""
    if not args.output.is_file():
        return {}
    previous = json.loads(args.output.read_text())
    kept = [record for record in previous["results"] if record["measurement"] not in args.measurements]
    if not kept:
        return {}
    return {"results": kept, "machine_of_kept_results": previous.get("machine_of_kept_results", previous["machine"])}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backbones", nargs="+", default=["regnetx_002", "resnet50"], help="timm names for inference")
    parser.add_argument("--batch-size", type=int, default=4)
    parser.add_argument("--people", type=int, default=10, help="people in the maps post-processed during inference")
    parser.add_argument("--repeats", type=int, default=7, help="timed runs per measurement (median kept)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed runs before timing a measurement")
    parser.add_argument("--torch-threads", type=int, default=torch.get_num_threads())
    parser.add_argument("--output", type=Path, default=RESULTS)
    parser.add_argument(
        "--measurements", nargs="+", choices=list(MEASUREMENTS), default=list(MEASUREMENTS),
        help="what to measure (default: all); the records of the others are kept from --output",
    )
    args = parser.parse_args()
    torch.set_num_threads(args.torch_threads)
    torch.manual_seed(0)
    report = {
        "benchmark": "bench_models",
        "device": "cpu",
        "source": "random-init models; decoding on ideal maps (codec targets) of random box-shaped people",
        "machine": machine_info(timm, transformers),
        "mmpose": MMPOSE_VERSION or "not importable: decode timed for semipose only",
    }
    kept = kept_results(args)
    new_results = [record for name in args.measurements for record in MEASUREMENTS[name](args)]
    report["results"] = kept.pop("results", []) + new_results
    report.update(kept)
    report["machine"]["load_average_1min_at_end"] = round(os.getloadavg()[0], 2)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
