"""The pieces of `benchmarks.bench_ssl`, the semi-supervised benchmark grid, one job per module.

- `regimes`: which built-in data the main job trains on (`default`, `crowd`), as main-job flags;
- `cells`: one training run of the grid (`Cell`), the grid and the pilot, each run's main-job command;
- `store`: finished runs on disk, one json each, so a grid killed halfway continues where it stopped;
- `runner`: train one cell in a subprocess and read its diagnostics (`teacher_readout` for semi runs);
- `paired`: paired differences over seeds and their t confidence intervals;
- `report`: the summary, the comparisons against the targets, the markdown tables and the plot;
- `estimate`: measured seconds per step and an estimate of a grid's wall time (`--dry-run`);
- `figure`: the teacher's pseudo people on crowded unlabeled images, early and late, next to the truth.
"""
