#!/usr/bin/env bash
# The weight-space path between two checkpoints of the tiny model, for figure 7 and the
# notebook: trains experiments/tiny.toml keeping every evaluation checkpoint (about a
# minute on 2 CPU cores; a rerun resumes or skips), then evaluates the held-out loss along
# theta(t) = (1 - t) theta_a + t theta_b between mid-run and the end, and between the
# last two checkpoints. Writes results/quickstart/interpolation/*.json.
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-runs/tiny}
uv run --frozen scaling train --config experiments/tiny.toml --set train.keep_eval_checkpoints=true --out "$out"
mkdir -p results/quickstart/interpolation
uv run --frozen scaling interpolate "$out@500" "$out@1000" --points 21 --range -0.5 1.5 \
    --json results/quickstart/interpolation/tiny_step500_to_1000.json
uv run --frozen scaling interpolate "$out@900" "$out@1000" --points 21 --range -0.5 1.5 \
    --json results/quickstart/interpolation/tiny_step900_to_1000.json
