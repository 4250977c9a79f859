#!/usr/bin/env bash
# One GPU call, within 9 minutes, plain python + torch (no Ray, Optuna or W&B needed):
#
#   .venv/bin/python benchmarks/device_bundle.py            # here, once: device_bundle/ (< 50 MiB)
#   device tool: run  command="bash benchmarks/device_run.sh"  carry=["device_bundle"]  timeout_s=600
#
# Stages, each under its own time limit, results and logs written under $OUT as they come (a
# timeout still returns what was done; 7 files at most, all directly in $OUT):
#   env.txt          GPU, driver, torch, what imports (smp from the bundle; no ray/optuna/wandb needed)
#   throughput.json  benchmarks/throughput.py: engine vs raw loop, bf16, CamVid 352x480 (all 367 images)
#   gpu_share.json   benchmarks/gpu_share.py: 1/2/4 trials per GPU, aggregate img/s, peak memory per trial
#   table.json/.md   benchmarks/device_table.py: ADELE Table 1 (ce, adele, adele_global) x 3 seeds at once
#   log.txt          every stage's output;  stages.txt: "stage exit-status seconds" per stage
#
# Run from the working tree (the call's copy, with device_bundle/ carried) or as
# device_bundle/src/benchmarks/device_run.sh; the code run is the tree the script is in, the bundle
# gives smp (timm), and CamVid.
# Environment: OUT (default ./device_out), BUNDLE (default ./device_bundle), PYTHON (default python3),
# DEVICE (default cuda), BUDGET_S (default 530: the whole run), TINY=1 (the CPU test: tiny sizes,
# 1 seed, 1 epoch; tests/benchmarks/test_device_run.py).
set -u
REPO=$(cd "$(dirname "$0")/.." && pwd)  # the project this script is in: the working tree, or a bundle's src/
DEFAULT_BUNDLE=$REPO/device_bundle
[ -d "$REPO/../site/segmentation_models_pytorch" ] && DEFAULT_BUNDLE=$(cd "$REPO/.." && pwd)
BUNDLE=${BUNDLE:-$DEFAULT_BUNDLE}
OUT=${OUT:-$REPO/device_out}
PY=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}
BUDGET_S=${BUDGET_S:-530}
TINY=${TINY:-0}
START=$(date +%s)
mkdir -p "$OUT"
LOG=$OUT/log.txt
: >"$LOG"
: >"$OUT/stages.txt"

SRC=$REPO  # the code that travelled with the call (the bundle's src/ is a snapshot for use elsewhere)
CAMVID=$BUNDLE/data/camvid
export PYTHONPATH="$BUNDLE/site:$SRC"
if ! "$PY" -c "import timm" >/dev/null 2>&1; then  # the machine's own timm first; the bundle's if none
  export PYTHONPATH="$PYTHONPATH:$BUNDLE/site_extra"
fi
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 TQDM_DISABLE=1
cd "$SRC" || exit 2

left() { echo $((START + BUDGET_S - $(date +%s))); }

# stage NAME LIMIT_S COMMAND...: run it with a time limit (never past the budget), log it, record it
stage() {
  local name=$1 limit=$2 t0 rc budget
  shift 2
  budget=$(left)
  [ "$limit" -gt "$budget" ] && limit=$budget
  if [ "$limit" -le 5 ]; then
    echo "$name skipped 0" >>"$OUT/stages.txt"
    echo "== $name: skipped, no time left" >>"$LOG"
    return
  fi
  t0=$(date +%s)
  echo "== $name ($(date -u +%H:%M:%S), limit ${limit}s): $*" >>"$LOG"
  timeout -k 10 "$limit" "$@" >>"$LOG" 2>&1
  rc=$?
  echo "== $name: exit $rc after $(($(date +%s) - t0)) s" >>"$LOG"
  echo "$name $rc $(($(date +%s) - t0))" >>"$OUT/stages.txt"
}

if [ "$TINY" = 1 ]; then  # the CPU test: the same stages on a tiny model and 64x96 images
  SIZE="64 96"; SEEDS="0"
  SMALL=(--set "model.kwargs={encoder_depth: 3, decoder_channels: [16, 8, 4]}")
  TP_ARGS=(--datasets camvid --size $SIZE --repeats 1 "${SMALL[@]}")
  SHARE_ARGS=(--dataset camvid --size $SIZE --counts 1 2 --epochs 1 --repeats 1 "${SMALL[@]}")
  TABLE_ARGS=(--seeds $SEEDS --epochs 1 --size $SIZE "${SMALL[@]}")
  LIMITS=(120 240 240 300)
else
  SIZE="352 480"; SEEDS="0 1 2"
  TP_ARGS=(--datasets camvid --size $SIZE --repeats 3)
  SHARE_ARGS=(--dataset camvid --size $SIZE --counts 1 2 4 --epochs 2 --repeats 2)
  TABLE_ARGS=(--seeds $SEEDS --size $SIZE)
  LIMITS=(30 110 120 530)
fi

stage env "${LIMITS[0]}" bash -c "
  { date -u; uname -a; nvidia-smi 2>&1 | head -20; echo PYTHONPATH=\$PYTHONPATH
    '$PY' -c 'import sys, torch, timm, segmentation_models_pytorch as smp, trainables.engine, trainables.run
print(sys.version.split()[0], \"torch\", torch.__version__, \"cuda\", torch.cuda.is_available(),
      torch.cuda.get_device_name(0) if torch.cuda.is_available() else \"-\", \"smp\", smp.__version__, \"from\",
      smp.__file__, \"timm\", timm.__version__)
for m in (\"ray\", \"optuna\", \"wandb\"):  # timm imports wandb when it is installed; nothing needs it
    print(m, \"loaded\" if m in sys.modules else \"not loaded\")'
    cat '$BUNDLE/manifest.json' 2>/dev/null | head -c 3000; } >'$OUT/env.txt' 2>&1; cat '$OUT/env.txt'"

stage throughput "${LIMITS[1]}" "$PY" benchmarks/throughput.py --device "$DEVICE" --camvid-root "$CAMVID" \
  "${TP_ARGS[@]}" --json "$OUT/throughput.json"

stage gpu_share "${LIMITS[2]}" "$PY" benchmarks/gpu_share.py --device "$DEVICE" --camvid-root "$CAMVID" \
  "${SHARE_ARGS[@]}" --json "$OUT/gpu_share.json"

# the table gets what is left, its trials stopped 15 s before the budget ends
stage table "${LIMITS[3]}" "$PY" benchmarks/device_table.py --device "$DEVICE" --camvid-root "$CAMVID" \
  "${TABLE_ARGS[@]}" --deadline-s $(($(left) - 15)) --throughput-json "$OUT/throughput.json" \
  --share-json "$OUT/gpu_share.json" --json "$OUT/table.json" --md "$OUT/table.md"

echo "== done in $(($(date +%s) - START)) s" >>"$LOG"
cat "$OUT/stages.txt"
