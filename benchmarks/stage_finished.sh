#!/usr/bin/env bash
# Stage a study's finished runs for a commit while it keeps running:
#   bash benchmarks/stage_finished.sh benchmarks/r8-kd && git commit -m "..."
# every run folder with a results.json, every dev choice and report; a run still in progress (no
# results.json yet) stays out, and the compare command reruns it on resume.
set -euo pipefail
study=${1:?usage: stage_finished.sh <study folder>}
find "$study" -name results.json -not -path "*/wandb/*" -print0 | xargs -0 -r -n1 dirname | xargs -r git add
find "$study" \( -name choice.json -o -path "*/report/*" \) -not -path "*/wandb/*" -type f -print0 | xargs -0 -r git add
