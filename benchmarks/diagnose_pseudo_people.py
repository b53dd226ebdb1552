"""Why are a teacher's pseudo people wrong? Its false positives split into duplicates, fragments and wrong joints.

On the validation split of the checkpoint's own dataset (its `final_metrics.json` names it; or on its
unlabeled training images, below), the network's maps are computed once and decoded with each decoder
variant (config overrides, e.g. `{"fill_missing": false}`). At every person-score threshold the people
are filtered exactly as pseudo labels are (score >= threshold, at least one keypoint at or above the
keypoint threshold) and matched to the ground truth by pycocotools' own greedy OKS matching at OKS
0.5. Each kept person then counts as one of:

- `correct`: matched (these give precision);
- `duplicate`: unmatched but OKS > 0.5 with a person that a better-scored one already matched;
- `fragment`: otherwise, with fewer than half of the K keypoints found by grouping (the rest were
  filled from the heatmaps) -- only the associative-embedding decoder fills;
- `wrong_joints`: otherwise (enough keypoints, but no OKS > 0.5 with anybody); `near_miss` counts
  those with OKS > 0.3 with somebody (joints placed too far, rather than taken from another person).

Each ground-truth person unmatched at the threshold is a miss: `filtered_out` when some decoded
person (before the filter) has OKS > 0.5 with it, else `not_decoded`. The validation AP of each
variant (all decoded people, the trainer's evaluation) is reported with it, so a decoder change
that raises pseudo precision can be checked not to cost AP.

`--split unlabeled` scores the teacher where training uses it: on the training images outside the
run's labeled subset, against their ground truth from the dataset's `full` config (the trainer never
reads it; synthetic and COCO-style folders have it). `--flip_test` also runs each image mirrored and
averages the maps before decoding (the test-time augmentation of `PoseEstimator`).

Results go to `benchmarks/results/diagnose_pseudo_people.{json,md}`, one entry per `--label`
(rerunning a label replaces it), so a before/after pair of runs on the same checkpoint lands in
one table. "Before" runs use an older checkout's semipose on PYTHONPATH with this same script.

Usage:

```bash
python -m benchmarks.diagnose_pseudo_people --checkpoint /tmp/ae_teacher --label after \\
    --variants '{"default": {}, "no fill": {"fill_missing": false}}'
```
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import shlex
import sys
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

import semipose
from semipose.data.collator import EvaluationCollator
from semipose.data.dataset_folder import load_pose_dataset, read_dataset_metadata, read_dataset_skeleton
from semipose.data.unreadable import lazy_images
from semipose.evaluation import KeypointEvaluator, ground_truth_from_rows
from semipose.evaluation.protocols import captured_pycocotools_output, keypoint_cocoeval, with_box_areas
from semipose.inference import load_checkpoint
from semipose.modeling.codec_associative_embedding import encode_associative_embedding_targets
from semipose.modeling.codec_common import confident_people

REPO = Path(__file__).resolve().parents[1]
RESULTS = REPO / "benchmarks" / "results" / "diagnose_pseudo_people"
PERSON_THRESHOLDS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.35, 0.4, 0.5, 0.6)  # bench_ssl's curve, plus .25 and .35
OKS_MATCH = 0.5
NEAR_MISS_OKS = 0.3  # a wrong-joints person this close to somebody is a localization error, not a grouping one
CATEGORIES = ("correct", "duplicate", "fragment", "wrong_joints")


def network_outputs(model, processor, images, flip_test: bool = False) -> tuple[list, list[int], list]:
    """The model's output maps per batch of `images`, with image ids and original sizes, computed once."""
    loader = DataLoader(images, batch_size=32, collate_fn=EvaluationCollator(processor))
    outputs, image_ids, sizes = [], [], []
    with torch.no_grad():
        for batch in loader:
            outputs.append(model(pixel_values=batch["pixel_values"], flip_test=flip_test))
            image_ids += batch["image_ids"].tolist()
            sizes.append(batch["target_sizes"])
    return outputs, image_ids, sizes


def decoded_people(model, processor, outputs, sizes, overrides: dict) -> list[dict[str, torch.Tensor]]:
    """Per image, its decoded people in original pixels, decoding with the config's settings + `overrides`."""
    original = model.config
    model.config = copy.deepcopy(original)
    for name, value in overrides.items():
        if not hasattr(original, name):
            raise ValueError(f"--variants: {type(original).__name__} has no field {name!r}.")
        setattr(model.config, name, value)
    try:
        return [
            person
            for batch, target_sizes in zip(outputs, sizes)
            for person in processor.post_process_pose_estimation(model.decode(batch), target_sizes=target_sizes)
        ]
    finally:
        model.config = original


def grouped_keypoint_counts(filled: list[dict], grouped: list[dict]) -> list[np.ndarray]:
    """Per image and filled person, how many of its keypoints came from grouping (not from filling).

    The person of `grouped` (decoded with `fill_missing=False`) whose found keypoints all sit where
    the filled person has them is the same person; a filled person with no such match counts K.
    """
    counts = []
    for image_filled, image_grouped in zip(filled, grouped):
        num_keypoints = image_filled["keypoints"].shape[1]
        if len(image_grouped["scores"]) == 0:
            counts.append(np.full(len(image_filled["scores"]), num_keypoints))
            continue
        found = image_grouped["keypoint_scores"] > 0  # [G, K]
        same = (image_filled["keypoints"].unsqueeze(1) - image_grouped["keypoints"].unsqueeze(0)).abs().amax(-1) < 1e-4
        agrees = (same | ~found.unsqueeze(0)).all(dim=-1)  # [F, G]
        per_person = torch.where(agrees, found.sum(dim=-1).unsqueeze(0), -1).amax(dim=1)
        counts.append(torch.where(per_person < 0, num_keypoints, per_person).numpy())
    return counts


def results_json(image_ids, people, grouped_counts, person_threshold: float, keypoint_threshold: float) -> list[dict]:
    """COCO results of the people passing the pseudo-label filter, each with its grouped-keypoint count."""
    results = []
    for image_id, image, counts in zip(image_ids, people, grouped_counts):
        triples = torch.cat([image["keypoints"], image["keypoint_scores"].unsqueeze(-1)], dim=-1)
        kept = confident_people(image["scores"], image["keypoint_scores"], person_threshold, keypoint_threshold)
        for person, score, count, keep in zip(triples, image["scores"].tolist(), counts, kept.tolist()):
            if keep:
                results.append({"image_id": image_id, "category_id": 1, "keypoints": person.flatten().tolist(),
                                "score": score, "grouped_keypoints": int(count)})
    return results


def matched_evaluation(ground_truth: dict, results: list[dict], skeleton):
    """pycocotools' keypoint evaluation (area range "all") after `evaluate()`: matches at every OKS threshold."""
    with captured_pycocotools_output():
        cocoeval = keypoint_cocoeval(ground_truth, results, skeleton.sigmas)
        cocoeval.params.areaRng = [cocoeval.params.areaRng[0]]
        cocoeval.params.areaRngLbl = ["all"]
        cocoeval.evaluate()
    return cocoeval


def oks_by_id(cocoeval, image_id: int) -> tuple[np.ndarray, list[int], list[int]]:
    """OKS [D, G] of one image with its detection ids (score order) and ground-truth ids (stored order)."""
    detections = sorted(cocoeval._dts[image_id, 1], key=lambda d: -d["score"])[: cocoeval.params.maxDets[-1]]
    truths = cocoeval._gts[image_id, 1]
    oks = np.asarray(cocoeval.computeOks(image_id, 1)) if detections and truths else np.zeros(0)
    return oks.reshape(len(detections), len(truths)), [d["id"] for d in detections], [g["id"] for g in truths]


def classify(cocoeval, num_keypoints: int, best_oks_of_truth: dict[int, float]) -> dict[str, int]:
    """Counts of kept people per category (and of near misses among the wrong joints) and of missed
    ground-truth people, at OKS 0.5."""
    counts = dict.fromkeys((*CATEGORIES, "near_miss", "filtered_out", "not_decoded", "truths"), 0)
    for image in filter(None, cocoeval.evalImgs):
        oks, detection_ids, truth_ids = oks_by_id(cocoeval, image["image_id"])
        counted = {g for g, ignored in zip(image["gtIds"], image["gtIgnore"]) if not ignored}
        matched = {truth for truth, match in zip(image["gtIds"], image["gtMatches"][0]) if match > 0}
        for detection, match, ignored in zip(image["dtIds"], image["dtMatches"][0], image["dtIgnore"][0]):
            if ignored:
                continue
            overlaps = {t: value for t, value in zip(truth_ids, oks[detection_ids.index(detection)]) if t in counted}
            grouped = cocoeval.cocoDt.anns[detection]["grouped_keypoints"]
            category = _category(match > 0, overlaps, matched, grouped, num_keypoints)
            counts[category] += 1
            counts["near_miss"] += int(category == "wrong_joints" and max(overlaps.values(), default=0) > NEAR_MISS_OKS)
        for truth in counted:
            counts["truths"] += 1
            if truth not in matched:
                counts["filtered_out" if best_oks_of_truth.get(truth, 0.0) > OKS_MATCH else "not_decoded"] += 1
    return counts


def _category(is_match: bool, overlaps: dict[int, float], matched: set[int], grouped: int, num_keypoints: int) -> str:
    """One kept person's category from its OKS with each counted ground-truth person."""
    if is_match:
        return "correct"
    if any(value > OKS_MATCH and truth in matched for truth, value in overlaps.items()):
        return "duplicate"
    return "fragment" if grouped < num_keypoints / 2 else "wrong_joints"


def best_oks_per_truth(cocoeval) -> dict[int, float]:
    """Each ground-truth id's best OKS with any of the (unfiltered) detections."""
    best = {}
    for image_id in cocoeval.params.imgIds:
        oks, _, truth_ids = oks_by_id(cocoeval, image_id)
        for column, truth in enumerate(truth_ids):
            best[truth] = float(oks[:, column].max()) if oks.size else 0.0
    return best


def diagnose_variant(model, processor, maps, truths: tuple[dict, dict], skeleton, overrides: dict, args) -> dict:
    """AP and, per person threshold, the category counts of one decoder variant.

    `truths`: the ground truth as evaluation scores it and as OKS matching reads it (CrowdPose: box areas).
    """
    ground_truth, matching_truth = truths
    outputs, image_ids, sizes = maps
    people = decoded_people(model, processor, outputs, sizes, overrides)
    fills = getattr(model.config, "fill_missing", False) and overrides.get("fill_missing", True)
    if fills:
        grouped = decoded_people(model, processor, outputs, sizes, {**overrides, "fill_missing": False})
        counts = grouped_keypoint_counts(people, grouped)
    else:
        counts = [(image["keypoint_scores"] > 0).sum(dim=-1).numpy() for image in people]
    evaluator = KeypointEvaluator(ground_truth, skeleton)
    for image_id, image in zip(image_ids, people):
        evaluator.add(image_id, torch.cat([image["keypoints"], image["keypoint_scores"].unsqueeze(-1)], -1),
                      image["scores"])
    everyone = matched_evaluation(matching_truth, results_json(image_ids, people, counts, -1.0, -1.0), skeleton)
    best_oks = best_oks_per_truth(everyone)
    rows = []
    for threshold in PERSON_THRESHOLDS:
        results = results_json(image_ids, people, counts, threshold, args.keypoint_threshold)
        tally = classify(matched_evaluation(matching_truth, results, skeleton), skeleton.num_keypoints, best_oks)
        kept = sum(tally[name] for name in CATEGORIES)
        rows.append({"person_threshold": threshold, "kept": kept, **tally,
                     "precision": round(tally["correct"] / kept, 4) if kept else 0.0,
                     "recall": round((tally["truths"] - tally["filtered_out"] - tally["not_decoded"])
                                     / max(1, tally["truths"]), 4),
                     "people_per_image": round(kept / len(image_ids), 3)})
    return {"overrides": overrides, "AP": round(evaluator.compute()["AP"], 4), "by_threshold": rows}


COLUMNS = ("precision | recall | kept | correct | duplicate | fragment | wrong joints (near misses) | "
           "filtered out | not decoded")


def _cells(row: dict) -> str:
    """The COLUMNS of one threshold's row."""
    return (f"{row['precision']:.3f} | {row['recall']:.3f} | {row['kept']} | {row['correct']} | {row['duplicate']} | "
            f"{row['fragment']} | {row['wrong_joints']} ({row['near_miss']}) | {row['filtered_out']} | "
            f"{row['not_decoded']}")


def _images(run: dict) -> str:
    """Which images a run scored (runs recorded before `--split` existed scored validation, without flip)."""
    return run.get("split", "validation") + (", flip" if run.get("flip_test") else "")


def tag_separation(outputs, rows, processor, config) -> dict | None:
    """How far apart the network keeps the tags of the people of one image (associative embedding only), read
    where the tag loss reads them: at each ground-truth person's labeled keypoints. None without two people."""
    if getattr(outputs[0], "tags", None) is None:
        return None
    tags = torch.cat([batch.tags for batch in outputs])
    separations, deviations = [], []
    for image_tags, row in zip(tags, rows):
        if not row["keypoints"]:
            continue
        keypoints = torch.tensor(row["keypoints"], dtype=torch.float32).view(len(row["keypoints"]), -1, 3)
        scale = processor.size.longest_edge / max(row["height"], row["width"])  # the processor's resize
        keypoints[..., :2] = (keypoints[..., :2] + 0.5) * scale - 0.5
        targets = encode_associative_embedding_targets(
            keypoints[None], tuple(tags.shape[-2:]), stride=config.output_stride, sigma=config.heatmap_sigma
        )
        picked = image_tags.flatten(1).gather(1, targets.pixel_index[0].T).T  # [M, K]
        people = [picked[m][targets.valid[0, m]] for m in range(len(keypoints)) if targets.valid[0, m].any()]
        deviations += [(person - person.mean()).abs().mean().item() for person in people if len(person) > 1]
        separations += [abs(a.mean() - b.mean()).item() for a, b in itertools.combinations(people, 2)]
    if not separations:
        return None
    return {
        "pairs_of_people": len(separations),
        "median_mean_tag_separation": round(float(np.median(separations)), 3),
        "pairs_closer_than_tag_threshold": round(float(np.mean(np.array(separations) < config.tag_threshold)), 3),
        "median_within_person_deviation": round(float(np.median(deviations)), 3) if deviations else None,
    }


def markdown(report: dict) -> str:
    """Every run's variants at its training threshold, then each variant at every threshold."""
    lines = [
        "# Pseudo-people diagnostic (benchmarks/diagnose_pseudo_people.py)",
        "",
        ("Kept people (person score >= threshold, a keypoint >= the keypoint threshold) on the images named per run "
         "(validation, or the run's unlabeled training images), matched at OKS 0.5: correct / duplicate (OKS > 0.5 "
         "with an already matched person) / fragment (< K/2 keypoints from grouping) / wrong joints (near misses: "
         "OKS > 0.3 with somebody); misses = ground-truth people unmatched, filtered out (a decoded person had "
         "OKS > 0.5) or not decoded. AP = OKS AP of all decoded people on those images; flip = maps averaged with "
         "the mirrored image's."),
        "",
        "## At the training threshold",
        "",
        f"| run | variant | images | AP | threshold | {COLUMNS} |",
        "|---" * 14 + "|",
    ]
    for label, run in report["runs"].items():
        for name, variant in run["variants"].items():
            row = next(r for r in variant["by_threshold"] if r["person_threshold"] == run["training_threshold"])
            lines.append(f"| {label} | {name} | {_images(run)} | {variant['AP']:.4f} | {run['training_threshold']:g} | "
                         f"{_cells(row)} |")
    separations = {label: run["tag_separation"] for label, run in report["runs"].items() if run.get("tag_separation")}
    if separations:
        lines += ["", ("Tags of the ground-truth people of one image (`tag_separation`): median distance between two "
                       "people's mean tags, share of pairs closer than the tag threshold, median distance of a "
                       "keypoint's tag to its person's mean."), ""]
        lines += [f"- {label}: {tags['median_mean_tag_separation']} apart, {tags['pairs_closer_than_tag_threshold']} "
                  f"of {tags['pairs_of_people']} pairs closer than the threshold, "
                  f"{tags['median_within_person_deviation']} within a person" for label, tags in separations.items()]
    lines += ["", "## Every threshold", ""]
    for label, run in report["runs"].items():
        for name, variant in run["variants"].items():
            lines += [f"### {label}: {name}", "", f"`{run['command']}` (semipose from {run['semipose']})", "",
                      f"| threshold | {COLUMNS} |", "|---" * 10 + "|"]
            lines += [f"| {row['person_threshold']:g} | {_cells(row)} |" for row in variant["by_threshold"]]
            lines.append("")
    return "\n".join(lines)


def scored_images(summary: dict, split: str):
    """The images the teacher is scored on, with their ground-truth rows: the validation split, or (`unlabeled`)
    the annotated training images outside the run's labeled subset, whose truth only the `full` config holds
    (extra unlabeled images without annotations are left out)."""
    folder, config = summary["dataset"], summary["dataset_config"]
    if split == "validation":
        return load_pose_dataset(folder, config, "validation")
    labeled = set(read_dataset_metadata(folder)["labeled_image_ids"][config])
    return load_pose_dataset(folder, "full", "labeled").filter(lambda row: row["image_id"] not in labeled)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", required=True, help="A main-job output folder (model + final_metrics.json).")
    parser.add_argument("--label", required=True, help="Name of this run in the results (e.g. before, after).")
    parser.add_argument("--variants", default='{"default": {}}', help="JSON: variant name -> config overrides.")
    parser.add_argument("--training_threshold", type=float, default=0.4, help="Person threshold used in training.")
    parser.add_argument("--keypoint_threshold", type=float, default=0.3, help="The pseudo-label keypoint threshold.")
    parser.add_argument("--split", choices=("validation", "unlabeled"), default="validation",
                        help="Score on the validation split, or on the run's unlabeled training images.")
    parser.add_argument("--flip_test", action="store_true", help="Average the maps of each image and its mirror.")
    parser.add_argument("--output", type=Path, default=RESULTS, help="Output stem (.json and .md are written).")
    args = parser.parse_args()
    torch.set_num_threads(1)

    checkpoint = Path(args.checkpoint)
    summary = json.loads((checkpoint / "final_metrics.json").read_text())
    model, processor = load_checkpoint(checkpoint)
    skeleton = read_dataset_skeleton(summary["dataset"])
    images = lazy_images(scored_images(summary, args.split))
    ground_truth = ground_truth_from_rows(images.remove_columns("image"), skeleton.name)
    truths = (ground_truth, with_box_areas(ground_truth) if skeleton.oks_area_from_bbox else ground_truth)
    maps = network_outputs(model, processor, images, args.flip_test)
    variants = {
        name: diagnose_variant(model, processor, maps, truths, skeleton, overrides, args)
        for name, overrides in json.loads(args.variants).items()
    }
    path = args.output.with_suffix(".json")
    report = json.loads(path.read_text()) if path.exists() else {"runs": {}}
    report["runs"][args.label] = {
        "command": " ".join(["python -m benchmarks.diagnose_pseudo_people", *map(shlex.quote, sys.argv[1:])]),
        "checkpoint": str(checkpoint), "final_model": summary.get("final_model"),
        "semipose": str(Path(semipose.__file__).parents[1]),
        "training_threshold": args.training_threshold, "keypoint_threshold": args.keypoint_threshold,
        "split": args.split, "flip_test": args.flip_test,
        "tag_separation": tag_separation(maps[0], images.remove_columns("image"), processor, model.config),
        "variants": variants,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(report, indent=2) + "\n")
    args.output.with_suffix(".md").write_text(markdown(report))
    print(markdown({"runs": {args.label: report["runs"][args.label]}}))


if __name__ == "__main__":
    main()
