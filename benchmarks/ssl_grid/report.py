"""From run records to the benchmark's answer: summary, comparisons against the targets, tables, plot.

Comparisons are paired by seed (`paired`). `semi` is compared with each supervised variant (light
and strong labeled augmentation) separately, and the claim "semi beats the best supervised" needs
both: every variant's mean difference at or above the target and its interval above 0. The headline
`semi_minus_supervised` is the smaller of the two, against the variant with the higher mean AP;
picking that variant on the reported split can only make the baseline look better, never semi.

Illustration (not run: needs run records, e.g. `RunStore.finished`):

```python
summary = summarize(runs)
rows = comparisons(summary, ("center_offset",), ("ratio_5",))
rows[0]["semi_minus_supervised"], rows[0]["semi_minus_supervised_ci"]  # mean, [low, high]
```
"""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from .cells import LABEL_PERCENT, PSEUDO_PERSON_THRESHOLD  # noqa: E402
from .paired import METHOD, paired_difference  # noqa: E402
from .regimes import CROWD_BINS  # noqa: E402

TARGETS = {"label_bound_gap": 0.15, "semi_minus_supervised": 0.05, "semi_minus_consistency": 0.02}
SUPERVISED = ("supervised (light)", "supervised (strong)")
VARIANTS = (*SUPERVISED, "consistency", "semi")
BIN_STATS = ("AP(E)", "AP(M)", "AP(H)")


# ------------------------------------------------------------------------------------------ summary


def summarize(runs: list[dict]) -> dict[tuple[str, str, str], dict[str, Any]]:
    """Per (family, label ratio, variant): mean, spread (max - min) and count of student AP, the AP of
    each seed, and the same per crowd bin (AP(E), AP(M), AP(H)) where the runs report it."""
    groups: dict[tuple, list[dict]] = {}
    for run in runs:
        groups.setdefault((run["family"], run["dataset_config"], run["variant"]), []).append(run)
    return {key: _summary_cell(group) for key, group in groups.items()}


def _summary_cell(runs: list[dict]) -> dict[str, Any]:
    values = [run["metrics"]["eval_AP"] for run in runs]
    cell = {"mean": statistics.fmean(values), "spread": max(values) - min(values), "n": len(values),
            "by_seed": {run["seed"]: run["metrics"]["eval_AP"] for run in runs}}
    for name in BIN_STATS:
        by_seed = {run["seed"]: run["metrics"][f"eval_{name}"] for run in runs if f"eval_{name}" in run["metrics"]}
        if by_seed:
            cell[name] = {"mean": statistics.fmean(by_seed.values()), "by_seed": by_seed}
    return cell


# -------------------------------------------------------------------------------------- comparisons


def comparisons(summary: dict, families, configs) -> list[dict[str, Any]]:
    """Per family and ratio: the paired differences, the gap to the ceiling and whether each target is met."""
    return [_comparison(summary, family, config) for family, config in itertools.product(families, configs)]


def _comparison(summary: dict, family: str, config: str) -> dict[str, Any]:
    def by_seed(variant: str, ratio: str = config, stat: str | None = None) -> dict[int, float]:
        cell = summary.get((family, ratio, variant))
        if cell is None:
            return {}
        return cell["by_seed"] if stat is None else cell.get(stat, {}).get("by_seed", {})

    supervised = {variant: summary[(family, config, variant)]["mean"] for variant in SUPERVISED
                  if (family, config, variant) in summary}
    best = max(supervised, key=supervised.get) if supervised else None
    ceiling = summary.get((family, "full", "supervised (light)"))
    paired = {f"semi - {variant}": paired_difference(by_seed("semi"), by_seed(variant))
              for variant in (*SUPERVISED, "consistency")}
    by_bin = {stat: paired_difference(by_seed("semi", stat=stat), by_seed("consistency", stat=stat))
              for stat in BIN_STATS}
    against_best = paired.get(f"semi - {best}")
    against_consistency = paired["semi - consistency"]
    row = {
        "family": family, "dataset_config": config,
        "best_supervised_augmentation": None if best is None else best[len("supervised ("):-1],
        "best_supervised": None if best is None else supervised[best],
        "ceiling": None if ceiling is None else ceiling["mean"],
        "label_bound_gap": None if ceiling is None or best is None else ceiling["mean"] - supervised[best],
        "semi_minus_supervised": _mean(against_best), "semi_minus_consistency": _mean(against_consistency),
        "semi_minus_supervised_ci": _ci(against_best), "semi_minus_consistency_ci": _ci(against_consistency),
        "paired": paired, "semi_minus_consistency_by_bin": by_bin,
        "hard_gain_minus_easy_gain": _hard_minus_easy(by_seed, by_bin),
    }
    row["targets_met"] = _targets_met(row)
    return row


def _hard_minus_easy(by_seed, by_bin) -> dict[str, Any] | None:
    """Per seed: (semi - consistency on AP(H)) - (the same on AP(E)), paired over the seeds both bins have."""
    hard, easy = by_bin["AP(H)"], by_bin["AP(E)"]
    if hard is None or easy is None:
        return None
    return paired_difference(dict(zip(hard["seeds"], hard["differences"])),
                             dict(zip(easy["seeds"], easy["differences"])))


def _targets_met(row: dict[str, Any]) -> dict[str, bool | None]:
    """True / False per target; None where a run it needs is missing (or one seed leaves no interval)."""
    against_supervised = [row["paired"][f"semi - {variant}"] for variant in SUPERVISED]
    supervised_met = [_meets(difference, TARGETS["semi_minus_supervised"]) for difference in against_supervised]
    hard_minus_easy = row["hard_gain_minus_easy_gain"]
    return {
        "label_bound_gap": None if row["label_bound_gap"] is None
        else row["label_bound_gap"] >= TARGETS["label_bound_gap"],
        "semi_minus_supervised": None if None in supervised_met else all(supervised_met),
        "semi_minus_consistency": _meets(row["paired"]["semi - consistency"], TARGETS["semi_minus_consistency"]),
        "hard_bin_gains_at_least_easy": None if hard_minus_easy is None else hard_minus_easy["mean"] >= 0,
    }


def _meets(difference: dict | None, target: float) -> bool | None:
    if difference is None or difference["ci"] is None:
        return None
    return difference["mean"] >= target and difference["ci"][0] > 0


def _mean(difference: dict | None) -> float | None:
    return None if difference is None else difference["mean"]


def _ci(difference: dict | None) -> list[float] | None:
    return None if difference is None else difference["ci"]


# ------------------------------------------------------------------------------------------- tables


def _points(value: float | None) -> str:
    return "-" if value is None else f"{100 * value:+.1f}"


def _interval(interval: list[float] | None) -> str:
    return "-" if interval is None else f"[{_points(interval[0])}, {_points(interval[1])}]"


def markdown_table(summary: dict, rows: list[dict], families, configs, steps: int) -> str:
    """The main table: AP of every variant, the ceiling, the gap and the two differences with their CIs."""
    lines = [
        f"Student CrowdPose AP x 100 on the synthetic validation split after {steps} steps: mean ± spread "
        "(max - min) over seeds (n). Best supervised = the supervised variant with the higher mean AP "
        "(semi is held to each variant below). Intervals: " + METHOD + ".",
        "",
        "| family | labels | " + " | ".join(VARIANTS) + " | ceiling (100%, light) | label-bound gap | "
        "semi - best supervised | semi - consistency | semi - best supervised, 90% CI | "
        "semi - consistency, 90% CI |",
        "|---" * (len(VARIANTS) + 8) + "|",
    ]
    for row in rows:
        family, config = row["family"], row["dataset_config"]
        cells = []
        for variant in VARIANTS:
            cell = summary.get((family, config, variant))
            cells.append(
                "-" if cell is None else f"{100 * cell['mean']:.1f} ± {100 * cell['spread']:.1f} ({cell['n']})"
            )
        ceiling = "-" if row["ceiling"] is None else f"{100 * row['ceiling']:.1f}"
        lines.append(
            f"| {family} | {LABEL_PERCENT[config]}% | " + " | ".join(cells) + f" | {ceiling} | "
            f"{_points(row['label_bound_gap'])} | {_points(row['semi_minus_supervised'])} | "
            f"{_points(row['semi_minus_consistency'])} | {_interval(row['semi_minus_supervised_ci'])} | "
            f"{_interval(row['semi_minus_consistency_ci'])} |"
        )
    lines += [
        "",
        "Targets: label-bound gap >= +15; semi - each supervised variant >= +5 and semi - consistency >= +2, "
        "each with its 90% CI above 0; the hard bin gains at least as much as the easy bin.",
    ]
    return "\n".join(lines) + "\n"


def bins_table(summary: dict, families, configs) -> str:
    """AP(E) / AP(M) / AP(H) of every variant (mean over seeds), the ceiling included."""
    lines = [
        "AP x 100 per CrowdPose crowd bin, easy / medium / hard (mean over seeds).",
        "",
        "| family | labels | " + " | ".join(VARIANTS) + " |",
        "|---" * (len(VARIANTS) + 2) + "|",
    ]
    for family, config in itertools.product(families, (*configs, "full")):
        cells = []
        for variant in VARIANTS:
            cell = summary.get((family, config, variant))
            stats = [cell.get(name) if cell else None for name in BIN_STATS]
            cells.append("-" if None in stats else " / ".join(f"{100 * stat['mean']:.1f}" for stat in stats))
        if any(cell != "-" for cell in cells):
            lines.append(f"| {family} | {LABEL_PERCENT[config]}% | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def paired_table(rows: list[dict]) -> str:
    """Every paired difference: the per-seed values, their mean and 90% CI, and the target it answers."""
    lines = [
        "Paired differences x 100 (same seed), per seed, mean and 90% CI.",
        "",
        "| family | labels | difference | per seed | mean | 90% CI | target | met |",
        "|---" * 8 + "|",
    ]
    for row in rows:
        for name, difference, target, met in _paired_entries(row):
            lines.append(f"| {row['family']} | {LABEL_PERCENT[row['dataset_config']]}% | {name} | "
                         + _difference_cells(difference) + f" | {target} | {'-' if met is None else met} |")
    return "\n".join(lines) + "\n"


def _paired_entries(row: dict) -> list[tuple[str, dict | None, str, bool | None]]:
    """(name, difference, target, met) of each row of the paired table."""
    entries = []
    for name, difference in row["paired"].items():
        target = TARGETS["semi_minus_consistency" if name.endswith("consistency") else "semi_minus_supervised"]
        entries.append((name, difference, f"{_points(target)}, CI > 0", _meets(difference, target)))
    entries += [(f"semi - consistency, {stat}", difference, "-", None)
                for stat, difference in row["semi_minus_consistency_by_bin"].items()]
    entries.append(("(semi - consistency) on AP(H) - on AP(E)", row["hard_gain_minus_easy_gain"], "mean >= 0",
                    row["targets_met"]["hard_bin_gains_at_least_easy"]))
    return entries


def _difference_cells(difference: dict | None) -> str:
    if difference is None:
        return "- | - | -"
    per_seed = ", ".join(f"{_points(value)} (s{seed})"
                         for seed, value in zip(difference["seeds"], difference["differences"]))
    return f"{per_seed} | {_points(difference['mean'])} | {_interval(difference['ci'])}"


def curve_table(runs: list[dict], families, configs) -> str:
    """Mean pseudo-label precision / recall of the semi runs' final teachers, per crowd bin and threshold."""
    lines = [
        "Pseudo-label filter on validation (the final teacher's people, OKS 0.5): mean precision / recall over the "
        "semi runs, all images and per crowd bin; the threshold used in training is marked *.",
    ]
    for family, config in itertools.product(families, configs):
        curves = [run["diagnostics"]["pseudo_label_curves"] for run in runs
                  if run["family"] == family and run["dataset_config"] == config
                  and "pseudo_label_curves" in run.get("diagnostics", {})]
        if not curves:
            continue
        thresholds = [point["person_threshold"] for point in curves[0]["all"]]
        lines += ["", f"{family}, {LABEL_PERCENT[config]}% labels, {len(curves)} runs:", "",
                  "| images | " + " | ".join(f"{threshold:g}" for threshold in thresholds) + " |",
                  "|---" * (len(thresholds) + 1) + "|"]
        for name in ("all", *CROWD_BINS):
            if all(name in curve for curve in curves):
                lines.append(f"| {name} | " + " | ".join(_curve_point(curves, name, index, threshold, family)
                                                       for index, threshold in enumerate(thresholds)) + " |")
    return "\n".join(lines) + "\n"


def _curve_point(curves: list[dict], name: str, index: int, threshold: float, family: str) -> str:
    precision = statistics.fmean(curve[name][index]["precision"] for curve in curves)
    recall = statistics.fmean(curve[name][index]["recall"] for curve in curves)
    mark = "*" if threshold == PSEUDO_PERSON_THRESHOLD[family] else ""
    return f"{mark}{precision:.2f} / {recall:.2f}"


def diagnostics_table(runs: list[dict], families, configs) -> str:
    """Teacher vs student AP and pseudo-label quality over training, and the unsupervised loss terms
    against the supervised one near the end (means over seeds)."""
    lines = [
        "Over training (means over seeds, one value per evaluation from the end of the burn-in): student AP, "
        "teacher AP, pseudo-label precision / recall at the training threshold; unsupervised loss terms over "
        "the supervised one in the last quarter of training.",
        "",
        "| family | labels | mode | steps | student AP | teacher AP | pseudo precision | pseudo recall | "
        "consistency / supervised loss | pseudo / supervised loss |",
        "|---" * 10 + "|",
    ]
    for family, config, mode in itertools.product(families, configs, ("consistency", "semi")):
        group = [run for run in runs if (run["family"], run["dataset_config"], run["mode"]) == (family, config, mode)
                 and "diagnostics" in run]
        if group:
            lines.append(f"| {family} | {LABEL_PERCENT[config]}% | {mode} | " + _diagnostic_cells(group) + " |")
    return "\n".join(lines) + "\n"


def _diagnostic_cells(runs: list[dict]) -> str:
    evaluations = [run["diagnostics"]["evaluations"] for run in runs]
    ratios = [_late_loss_ratios(run) for run in runs]
    cells = [
        ", ".join(str(entry["step"]) for entry in max(evaluations, key=len)),
        _over_time(evaluations, "eval_AP", 100, 1), _over_time(evaluations, "eval_teacher_AP", 100, 1),
        _over_time(evaluations, "eval_pseudo_precision", 1, 2), _over_time(evaluations, "eval_pseudo_recall", 1, 2),
        *(_mean_text([r[name] for r in ratios if name in r], 1, 2) for name in ("consistency", "pseudo")),
    ]
    return " | ".join(cells)


def _over_time(evaluations: list[list[dict]], key: str, scale: float, digits: int) -> str:
    """The mean over runs of `key` at each evaluation, joined by arrows."""
    means = []
    for index in range(max(map(len, evaluations))):
        values = [points[index][key] for points in evaluations if index < len(points) and key in points[index]]
        means.append(_mean_text(values, scale, digits))
    return " → ".join(means)


def _mean_text(values: list[float], scale: float, digits: int) -> str:
    return "-" if not values else f"{scale * statistics.fmean(values):.{digits}f}"


def _late_loss_ratios(run: dict) -> dict[str, float]:
    """Mean over the last quarter of training of each unsupervised loss term / the supervised term."""
    log = run["diagnostics"]["train_log"]
    late = [entry for entry in log if entry["step"] > 0.75 * run["steps"] and entry.get("train/loss")]
    ratios = {}
    for name in ("consistency", "pseudo"):
        values = [entry[f"train/{name}_loss"] / entry["train/loss"] for entry in late if f"train/{name}_loss" in entry]
        if values:
            ratios[name] = statistics.fmean(values)
    return ratios


# --------------------------------------------------------------------------------------------- plot


def plot(summary: dict, families, configs, path: Path) -> None:
    """AP against label ratio (log axis), one line per variant, one panel per family; bars = min..max."""
    figure, axes = plt.subplots(1, len(families), figsize=(5.5 * len(families), 4), squeeze=False, sharey=True)
    colors = dict(zip(VARIANTS, ("tab:gray", "k", "tab:blue", "tab:red")))
    for axis, family in zip(axes[0], families):
        for variant, color in colors.items():
            ratios = list(configs) + (["full"] if variant in SUPERVISED else [])
            points = [
                (LABEL_PERCENT[c], summary[(family, c, variant)]) for c in ratios if (family, c, variant) in summary
            ]
            if not points:
                continue
            x = [percent for percent, _ in points]
            y = [100 * cell["mean"] for _, cell in points]
            half = [50 * cell["spread"] for _, cell in points]
            axis.errorbar(x, y, yerr=half, marker="o", capsize=3, color=color, label=variant)
        axis.set_xscale("log")
        axis.set_xticks(
            [LABEL_PERCENT[c] for c in configs] + [100], [f"{LABEL_PERCENT[c]}%" for c in configs] + ["100%"]
        )
        axis.set_title(family)
        axis.set_xlabel("labeled images")
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("validation AP x 100")
    axes[0][-1].legend(fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def plot_pseudo_label_curves(runs: list[dict], families, configs, path: Path) -> bool:
    """Precision against recall of the final teachers' pseudo people per crowd bin (mean over the semi runs),
    one panel per family and label ratio, a marker per person threshold; False (nothing drawn) without curves."""
    panels = [(family, config, [run["diagnostics"]["pseudo_label_curves"] for run in runs
                                if (run["family"], run["dataset_config"], run["mode"]) == (family, config, "semi")
                                and "pseudo_label_curves" in run.get("diagnostics", {})])
              for family, config in itertools.product(families, configs)]
    panels = [panel for panel in panels if panel[2]]
    if not panels:
        return False
    figure, axes = plt.subplots(1, len(panels), figsize=(4 * len(panels), 3.6), squeeze=False)
    for axis, (family, config, curves) in zip(axes[0], panels):
        for name, color in zip(("all", *CROWD_BINS), ("k", "tab:green", "tab:orange", "tab:red")):
            if not all(name in curve for curve in curves):
                continue
            points = range(len(curves[0][name]))
            recall = [statistics.fmean(curve[name][index]["recall"] for curve in curves) for index in points]
            precision = [statistics.fmean(curve[name][index]["precision"] for curve in curves) for index in points]
            axis.plot(recall, precision, marker="o", markersize=3, color=color, label=name)
        axis.set_title(f"{family}, {LABEL_PERCENT[config]}% ({len(curves)} runs)", fontsize=9)
        axis.set_xlabel("recall (OKS 0.5)")
        axis.set_xlim(0, 1)
        axis.set_ylim(0, 1)
        axis.grid(alpha=0.3)
    axes[0][0].set_ylabel("precision")
    axes[0][-1].legend(fontsize=8, title="crowd bin", title_fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return True


# -------------------------------------------------------------------------------------------- pilot


def pilot_rows(summaries: dict[int, dict], families) -> list[dict[str, Any]]:
    """Per image size and family: supervised AP on 5% (both augmentations) and on 100%, and the gap."""
    rows = []
    for size, family in itertools.product(sorted(summaries), families):
        summary = summaries[size]
        five = {variant: summary[(family, "ratio_5", variant)]["mean"] for variant in SUPERVISED
                if (family, "ratio_5", variant) in summary}
        ceiling = summary.get((family, "full", "supervised (light)"))
        gap = None if ceiling is None or not five else ceiling["mean"] - max(five.values())
        rows.append({"image_size": size, "family": family, "supervised_5": five,
                     "ceiling": None if ceiling is None else ceiling["mean"], "label_bound_gap": gap,
                     "label_bound": None if gap is None else gap >= TARGETS["label_bound_gap"]})
    return rows


def chosen_image_size(rows: list[dict[str, Any]]) -> int | None:
    """The smallest image size at which every family is label-bound; None if there is none (yet)."""
    sizes = sorted({row["image_size"] for row in rows})
    return next((size for size in sizes if all(row["label_bound"] for row in rows if row["image_size"] == size)),
                None)


def pilot_table(rows: list[dict[str, Any]], steps: int) -> str:
    lines = [
        f"Pilot: supervised AP x 100 after {steps} steps, 5% labels (light / strong augmentation) and 100% "
        f"(light); label-bound when 100% beats the better 5% run by >= {100 * TARGETS['label_bound_gap']:.0f}.",
        "",
        "| image size | family | 5%, light | 5%, strong | 100% | gap | label-bound |",
        "|---" * 7 + "|",
    ]
    for row in rows:
        five = [row["supervised_5"].get(variant) for variant in SUPERVISED]
        cells = ["-" if value is None else f"{100 * value:.1f}" for value in (*five, row["ceiling"])]
        label_bound = "-" if row["label_bound"] is None else row["label_bound"]
        lines.append(f"| {row['image_size']} | {row['family']} | " + " | ".join(cells)
                     + f" | {_points(row['label_bound_gap'])} | {label_bound} |")
    size = chosen_image_size(rows)
    lines += ["", "Smallest size at which every family is label-bound: "
              + ("none yet" if size is None else f"{size} px") + "."]
    return "\n".join(lines) + "\n"
