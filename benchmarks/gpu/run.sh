#!/usr/bin/env bash
# The GPU check of issue 19, in two device calls of under 8 minutes each (figures land in $OUT):
#
#   bench: the gpu tests; the fine-tuning benchmark with a BERT-base-sized random encoder in bf16 at
#          N = 512 (a, b, TopicBERT-512/-256/-128/-64, the HF Trainer d; MFU against the measured
#          bf16 matmul peak); the sequence-length cost (Figure 1) with peak memory per length.
#   main:  the main job on R8 with the real MiniLM weights in bf16: macro-F1, T_epoch and energy.
#
# Prepare the carried files first (python benchmarks/gpu/prepare.py), then, with the device tool:
#   run  command="bash benchmarks/gpu/run.sh bench"  carry=[".whl", ".gpu/common"]
#   run  command="bash benchmarks/gpu/run.sh main"   carry=[".whl", ".gpu/common", ".gpu/weights"]
# Dry run on this machine's CPU, every step shrunk, figures under runs/gpu-dry/<part>:
#   bash benchmarks/gpu/run.sh bench --dry-run && bash benchmarks/gpu/run.sh main --dry-run
set -euo pipefail
part=${1:?usage: run.sh bench|main [--dry-run]}
dry=${2:-}
cd "$(dirname "$0")/../.."
export HF_HUB_OFFLINE=1 WANDB_MODE=disabled PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
export NLTK_DATA=$PWD/.gpu/common/nltk_data
python=python3
if [ -n "$dry" ]; then
  OUT=runs/gpu-dry/$part
  python=${PYTHON:-.venv/bin/python}
  accelerator=cpu docs=128 repeats=1 lengths='[64]' seqlens='[32,64]' n=64 limits='--trainer.limit_train_batches 4 --trainer.limit_val_batches 2 --trainer.limit_test_batches 2'
else
  : "${OUT:?the device tool sets OUT}"
  $python -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
  export PYTHONPATH=/tmp/site
  accelerator=gpu docs=512 repeats=3 lengths='[512,256,128,64]' seqlens='[32,64,128,256,512]' n=512 limits=''
fi
mkdir -p "$OUT"
export PYTHONPATH=$PWD${PYTHONPATH:+:$PYTHONPATH}
data=$(mktemp -d)/data
mkdir -p "$data/r8"
for f in .gpu/common/data/r8/*.gz; do gunzip -c "$f" > "$data/r8/$(basename "$f" .gz)"; done
export TOPICBERT_DATA=$data
{ nvidia-smi 2>&1 || echo "no nvidia-smi"; $python -c "import torch, transformers, lightning; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'transformers', transformers.__version__, 'lightning', lightning.__version__)"; } > "$OUT/machine.txt"

case $part in
bench)
  # a failing test is reported in its file and the benchmarks still run (one call, every figure)
  $python -m pytest -m gpu tests/gpu -q -p no:cacheprovider -rs 2>&1 | tee "$OUT/gpu_tests.txt" \
    || echo "pytest exit status $?" | tee -a "$OUT/gpu_tests.txt"
  $python -m reports.finetune_benchmark --dataset r8 --encoder .gpu/common/minilm --random_encoder bert-base \
    --max_length $n --partition_lengths "$lengths" --documents $docs --repeats $repeats --accelerator $accelerator \
    --out "$OUT/finetune"
  $python -m reports.seqlen_cost --encoder bert-base --random_weights true --lengths "$seqlens" \
    --steps $([ -n "$dry" ] && echo 1 || echo 5) --out "$OUT/seqlen"
  ;;
main)
  encoder=$(mktemp -d)/minilm
  cp -r .gpu/common/minilm "$encoder"
  if [ -n "$dry" ]; then  # the weights are not carried here: the installed copy
    cp "$($python -c 'from utils.pretrained import resolve_pretrained as r; print(r("sentence-transformers/all-MiniLM-L6-v2"))')/model.safetensors" "$encoder/"
  else  # widen the carried half-precision weights back to fp32 for training
    $python -c "
import gzip, sys; from safetensors.torch import load, save_file
weights = load(gzip.open('.gpu/weights/model.fp16.safetensors.gz').read())
save_file({k: v.float() for k, v in weights.items()}, sys.argv[1], metadata={'format': 'pt'})" "$encoder/model.safetensors"
  fi
  # shellcheck disable=SC2086  # $limits is a list of arguments
  $python cli.py fit --config configs/topicbert.yaml --data.tokenizer "$encoder" --trainer.accelerator $accelerator \
    --wandb false --run.root "$(dirname "$encoder")/runs" --run.name main --run.version $accelerator $limits \
    --trainer.enable_progress_bar false 2>&1 | tee "$OUT/main_job.log"
  cp "$(dirname "$encoder")/runs/main/$accelerator/results.json" "$OUT/main_results.json"
  ;;
*)
  echo "usage: run.sh bench|main [--dry-run]" >&2
  exit 2
  ;;
esac
ls -la "$OUT"
