#!/usr/bin/env bash
# GPU check: what a session lent a CUDA machine runs first, in under 8 minutes (docs/benchmarks.md,
# "GPU check"):
#   1. the GPU-marked tests (pytest -m gpu);
#   2. `didtv bench --part network` for tiny, full and lite (a model that is not registered is
#      skipped; one without shipped weights is timed --untrained) at 1920x1080 and 3840x2160, in
#      fp16 and bf16, on CUDA; each report saved as JSON;
#   3. if time is left, one whole `didtv bench` (every part: decode, x265, convert) of tiny at
#      1080p fp16.
# Reports go to $OUT if set, else runs/gpu-check/; one line per report is printed at the end.
# Every command has its own timeout, and the whole stops at BUDGET_S (default 450 s) from the
# start: a command that would not fit is skipped (and said so), so the script ends within 8 min.
#
#   benchmarks/gpu_check.sh              # run it
#   DRY_RUN=1 benchmarks/gpu_check.sh    # print the commands, run nothing (no GPU needed)
#
# Needs the project venv (.venv); without it, `make venv` makes it (counted in the budget).
set -u
cd "$(dirname "$0")/.."

BUDGET_S=${BUDGET_S:-450}
DRY_RUN=${DRY_RUN:-0}
DIR=${OUT:-runs/gpu-check}
PY=.venv/bin/python
DIDTV=.venv/bin/didtv
START=$SECONDS
SKIPPED=0
FAILED=0

say() { echo "gpu_check: $*" >&2; }

# run SECONDS LOG CMD...: CMD under `timeout` (which signals its whole process group, so the
# bench's part processes and FFmpeg go too), stdout+stderr to LOG; cut short to fit the budget.
run() {
  local limit=$1 log=$2; shift 2
  if [ "$DRY_RUN" = 1 ]; then
    echo "timeout $limit $*"
    return 0
  fi
  local left=$((BUDGET_S - (SECONDS - START)))
  if [ "$left" -lt 30 ]; then
    say "skipped (budget spent): $*"
    SKIPPED=$((SKIPPED + 1))
    return 0
  fi
  [ "$limit" -gt "$left" ] && limit=$left
  say "($((SECONDS - START)) s) $*"
  timeout --kill-after=10 "$limit" "$@" >"$log" 2>&1
  local rc=$?
  if [ $rc -ne 0 ]; then
    FAILED=$((FAILED + 1))
    if [ $rc -eq 124 ] || [ $rc -eq 137 ]; then say "timed out after $limit s: $*"; else say "failed ($rc): $*"; fi
    tail -n 3 "$log" >&2
  fi
}

# bench NAME SECONDS ARGS...: one `didtv bench --json`, its report in $DIR/NAME.json
bench() {
  local name=$1 limit=$2; shift 2
  if [ "$DRY_RUN" = 1 ]; then
    echo "timeout $limit $DIDTV bench $* --json > $DIR/$name.json"
    return 0
  fi
  run "$limit" "$DIR/$name.log" bash -c "$DIDTV bench $* --json > '$DIR/$name.json'"
  [ -s "$DIR/$name.json" ] || rm -f "$DIR/$name.json"
}

if [ "$DRY_RUN" != 1 ]; then
  mkdir -p "$DIR" || exit 1
  if [ ! -x "$DIDTV" ]; then
    say "no .venv: making it (make venv)"
    make venv >"$DIR/make-venv.log" 2>&1 || { say "make venv failed, see $DIR/make-venv.log"; exit 1; }
  fi
  "$PY" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)" \
    || { say "no CUDA GPU visible to torch: nothing to check here (DRY_RUN=1 prints the commands)"; exit 1; }
  "$PY" -c "import torch; print('gpu_check:', torch.cuda.get_device_name(0), 'torch', torch.__version__)" >&2
fi

# tiny, full, lite as far as registered, each with ":untrained" when its weights are not shipped
MODELS=$("$PY" - <<'EOF'
from didtv.models.registry import registered
infos = {info.name: info for info in registered()}
for name in ("tiny", "full", "lite"):
    if name in infos:
        print(name + ("" if infos[name].weights_present() else ":untrained"))
EOF
) || { say "cannot list the registered models"; exit 1; }

run 150 "$DIR/pytest-gpu.log" "$PY" -m pytest -q -m gpu -p no:cacheprovider tests

# fp16 first (what `auto` picks on CUDA), 1080p before 4K, so a short budget keeps the essentials
for precision in fp16 bf16; do
  for size in 1920x1080 3840x2160; do
    if [ "$size" = 1920x1080 ]; then frames=16; limit=75; else frames=8; limit=100; fi
    for entry in $MODELS; do
      model=${entry%%:*}
      extra=""
      [ "$entry" != "$model" ] && extra=" --untrained"
      bench "$model-$size-$precision" "$limit" \
        "--model $model$extra --size $size --frames $frames --device cuda --precision $precision --part network"
    done
  done
done

if [ "${MODELS#*tiny}" != "$MODELS" ]; then
  bench "tiny-1920x1080-fp16-all-parts" 150 \
    "--model tiny --size 1920x1080 --frames 24 --device cuda --precision fp16"
fi

[ "$DRY_RUN" = 1 ] && exit 0

"$PY" - "$DIR" <<'EOF' | tee "$DIR/summary.txt"
import json, sys
from pathlib import Path
for path in sorted(Path(sys.argv[1]).glob("*.json")):
    r = json.loads(path.read_text())
    net = r["parts"].get("network", {})
    mem = net.get("memory", {})
    line = (f"{path.stem}: network {net.get('fps', 0):.2f} fps, "
            f"{net.get('flops_per_s', 0) / 1e12:.1f} TFLOP/s ({r.get('network_vs_reference', 0) * 100:.0f}% of the "
            f"reference conv), CUDA peak {mem.get('cuda_mb', 0):.0f} MB")
    if "convert_vs_x265" in r:
        line += f"; convert {r['parts']['pipeline']['fps']:.2f} fps = {r['convert_vs_x265']:.2f} x x265-medium"
    print(line)
EOF
say "done in $((SECONDS - START)) s: reports in $DIR ($FAILED failed, $SKIPPED skipped)"
[ "$FAILED" -eq 0 ]
