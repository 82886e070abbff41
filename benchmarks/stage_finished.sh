#!/usr/bin/env bash
# Stage a study's finished runs for a commit while it keeps running:
#   bash benchmarks/stage_finished.sh benchmarks/r8-kd && git commit -m "..."
# every run folder whose results.json says it finished (fit or complete), every dev choice and
# report; a run still in progress or stopped (no results.json yet, or "failed") stays out, and the
# compare command reruns it on resume. Set-aside attempts (`*.stopped-*`, git-ignored) stay out too.
set -euo pipefail
study=${1:?usage: stage_finished.sh <study folder>}
find "$study" -name results.json -not -path "*/wandb/*" -not -path "*.stopped-*" -print0 |
  xargs -0 -r grep -lE '"status": "(fit|complete)"' | xargs -r -n1 dirname | xargs -r git add
find "$study" \( -name choice.json -o -path "*/report/*" \) -not -path "*/wandb/*" -type f -print0 | xargs -0 -r git add
