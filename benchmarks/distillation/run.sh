#!/usr/bin/env bash
# Issue 18b/18c: distillation under the fair-comparison protocol, one step after another.
#
#   bash benchmarks/distillation/run.sh r8            # resumable: each step skips what is finished
#   bash benchmarks/distillation/run.sh reuters21578
#
# 1. the teacher: R8 takes the best TopicBERT checkpoint of the R8 grid (runs/compare/r8-grid) by dev
#    alone; Reuters fits TopicBERT-512 once (seed 1, 4 epochs, its best-by-dev epoch kept);
# 2. it labels the transfer set (train + 3 augmented copies), then its diagnostics;
# 3. baselines, C chosen on dev: R8 tf-idf LR/SVM, BERT-Avg and BERT-Avg+DTR (an NVDM pretrained on
#    R8); Reuters tf-idf LR/SVM;
# 4. LogReg, KimCNN, BiLSTM, each with and without KD: lr searched on dev (one seed), then seeds 1-3,
#    every run at one budget of optimiser steps with 8 dev evaluations (candidate checkpoints):
#    R8 2,496 steps (32 epochs of train = 8 epochs of the 4x transfer set, the students' configs);
#    Reuters 1,760 steps (16 epochs of train = 4 of the transfer set, halved to fit 2 CPU cores);
# 5. one report of students, teacher and baselines against the teacher (also logged to W&B).
# Runs go to runs/compare/<dataset>-kd, tables and fronts to benchmarks/<dataset>-kd.
# Run nothing else beside it: its times and energy would be wrong.
set -euo pipefail
dataset=${1:?usage: run.sh r8|reuters21578}
cd "$(dirname "$0")/../.."
python=${PYTHON:-python}
out=runs/compare/$dataset-kd
bench=benchmarks/$dataset-kd
logits=$out/teacher-logits.npz
export PYTHONUNBUFFERED=1
list() { local IFS=,; echo "[$*]"; }  # a YAML flow list of the arguments
lower() { tr '[:upper:]' '[:lower:]' <<< "$1"; }
publish() { rm -rf "${2:?}" && mkdir -p "$2" && cp -r "$1"/. "$2" && rm -rf "$2/wandb"; }  # a report, W&B files left out
case $dataset in
r8)
  teacher_configs=(configs/topicbert.yaml)
  student_extra=() student_args=()
  steps=2496 dev_size=500
  baselines=(--nvdm_checkpoint "$out/nvdm/version_0/checkpoints/best.ckpt")
  teachers=runs/compare/r8-grid/runs
  ;;
reuters21578)
  teacher_configs=(configs/topicbert.yaml configs/reuters.yaml)
  student_extra=(configs/students/reuters.yaml) student_args=(--overrides '[--model.init_args.threshold_tuning, per_class]')
  steps=1760 dev_size=0.1
  baselines=(--models '[tfidf-lr, tfidf-svm]')
  teachers=$out/teacher/runs
  $python -m reports.compare "[{name: TopicBERT-512, configs: $(list "${teacher_configs[@]}")}]" \
    --budget.epochs 4 --seeds '[1]' --out "$out/teacher"
  ;;
*)
  echo "unknown dataset $dataset: r8 or reuters21578" >&2
  exit 2
  ;;
esac
mkdir -p "$out" "$bench"

teacher=$($python -m reports.best_run "$teachers" --model 'TopicBERT-*' --out "$bench/teacher.json")
field() { $python -c "import json, sys; print(json.load(open(sys.argv[1]))['chosen'][sys.argv[2]])" "$bench/teacher.json" "$1"; }
if [ ! -f "$logits" ]; then
  echo "teacher predict on the transfer set: $teacher"
  configs=()
  for c in "${teacher_configs[@]}" configs/distill/teacher.yaml; do configs+=(--config "$c"); done
  $python cli.py predict "${configs[@]}" --ckpt_path "$teacher" --trainer.callbacks.init_args.output_path "$logits" \
    --run.root "$out" --run.name teacher-predict > "$out/teacher-predict.log" 2>&1
fi
$python -m reports.teacher_diagnostics --logits "$logits" --dataset "$dataset" --dev_size "$dev_size" \
  --teacher_checkpoint "$teacher" --out "$bench"

if [ "$dataset" = r8 ] && [ ! -f "$out/nvdm/version_0/checkpoints/best.ckpt" ]; then
  echo "NVDM pretraining for BERT-Avg+DTR"
  $python cli.py fit --config configs/nvdm.yaml --run.root "$out" --run.name nvdm --run.version version_0 \
    > "$out/nvdm.log" 2>&1
fi
if [ ! -f "$out/baselines/$dataset/tfidf-svm/results.json" ]; then
  $python -m reports.baselines --dataset "$dataset" --dev_size "$dev_size" "${baselines[@]}" --out "$out/baselines"
fi

declare -A grid=(
  [logreg]='[0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1.0]'
  [kimcnn]='[3.0e-4, 1.0e-3, 3.0e-3]'
  [bilstm]='[3.0e-4, 1.0e-3, 3.0e-3]'
)
declare -A label=([logreg]=LogReg [kimcnn]=KimCNN [bilstm]=BiLSTM)
chosen=()
for family in logreg kimcnn bilstm; do
  name=${label[$family]}
  plain=("configs/students/$family.yaml" "${student_extra[@]}")
  $python -m reports.compare "[{name: $name, configs: $(list "${plain[@]}")},
    {name: KD-$name, configs: $(list "${plain[@]}" configs/distill/student.yaml),
     overrides: [--data.teacher_logits, $logits]}]" \
    --budget.steps "$steps" --budget.evaluations 8 --search "{lr: ${grid[$family]}}" --seeds '[1,2,3]' \
    --baseline "$name" "${student_args[@]}" --out "$out/$family"
  publish "$out/$family/report" "$bench/$family"
  for arm in "$name" "KD-$name"; do
    choice=$out/$family/search/$arm/choice.json
    cp "$choice" "$bench/$family/search_$(lower "$arm").json"
    setting=$($python -c "import json, sys; from reports.compare import settings_name; \
print(settings_name(json.load(open(sys.argv[1]))['chosen']))" "$choice")
    chosen+=("$out/$family/runs/$arm/$setting")
    mkdir -p "$bench/$family/results"
    for run in "$out/$family/runs/$arm/$setting"/seed*/results.json; do
      cp "$run" "$bench/$family/results/$(lower "$arm")-$(basename "$(dirname "$run")").json"
    done
  done
done

$python -m reports.report "$(list "$(field run)" "${chosen[@]}" "$out/baselines/$dataset")" --baseline "$(field model)" \
  --out "$out/report"
for f in "$out"/report/table3.* "$out"/report/pareto_*.png; do cp "$f" "$bench/"; done
