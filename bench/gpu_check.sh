#!/usr/bin/env bash
# The GPU check in one command, with no network (issue 28): `vicreg
# backends`, then the paper's step (ResNet-50x2, 96 px, batch 256, local
# loss: bench:compare's resnet50x2-96px-b256-local) on webgpu and, where
# tfjs-node-gpu loads, tensorflow, timed against PyTorch on CUDA in the same
# run, then the paper preset's step plan on the GPU. Every deno command runs
# with --cached-only from $DENO_DIR, filled beforehand by `deno task
# cache-deps` (bench/README.md: "A GPU check without network").
#
# Usage: bench/gpu_check.sh [--quick] [--steps N] [--python PATH]
#   --quick        the tiny case (tiny-16px-b16, 1 step) and the tiny preset's
#                  plan: the whole check end to end in seconds, also on a
#                  software adapter (Mesa's llvmpipe), with PyTorch on its CPU
#                  when it has no CUDA
#   --steps N      timed steps per case (default 3; 1 with --quick)
#   --python PATH  the Python with PyTorch (default python3)
# Environment: DENO (the deno binary, default `deno` on PATH), DENO_DIR.
# Prints a `# …` line per stage, the backends table, and one JSON line per
# case and backend and for the plan; finishes in under 10 minutes (each stage
# has its own time limit; a stage over it prints a JSON line saying so).
set -uo pipefail

fail() {
  echo "gpu_check: $*" >&2
  exit 1
}

quick=0
steps=""
python=python3
while [ $# -gt 0 ]; do
  case "$1" in
  --quick) quick=1 ;;
  --steps)
    [ $# -ge 2 ] || fail "flag --steps: expected a positive integer"
    steps=$2
    shift
    ;;
  --python)
    [ $# -ge 2 ] || fail "flag --python: expected a path"
    python=$2
    shift
    ;;
  -h | --help)
    sed -n '2,21p' "$0" | sed 's/^# \{0,1\}//'
    exit 0
    ;;
  *) fail "unknown flag $1 (expected --quick, --steps N, --python PATH)" ;;
  esac
  shift
done
if [ -n "$steps" ] && ! [[ "$steps" =~ ^[1-9][0-9]*$ ]]; then
  fail "flag --steps: expected a positive integer: received $steps"
fi

cd "$(dirname "$0")/.." || fail "cannot enter the repository"
deno=${DENO:-deno}
command -v "$deno" >/dev/null 2>&1 ||
  fail "no deno binary: put deno on PATH or set DENO=/path/to/deno (bench/README.md)"
export NO_COLOR=1 RUST_BACKTRACE=0
run=("$deno" run --cached-only --frozen -A)
cache="${DENO_DIR:-$("$deno" info --json 2>/dev/null | sed -n 's/.*"denoDir": *"\([^"]*\)".*/\1/p')}"

# Everything the check loads, from the cache only: the first thing missing
# is named in one line.
if ! out=$("$deno" install --cached-only --frozen \
  --entrypoint cli/main.ts bench/compare.ts 2>&1); then
  what=$(printf '%s\n' "$out" |
    grep -oE '(npm package|Specifier) not found in cache: "[^"]*"' | head -1 |
    sed 's/ not found in cache: / /; s/^Specifier/module/')
  [ -n "$what" ] || what=$(printf '%s\n' "$out" | grep -m1 -i 'error' |
    sed 's/^error: //')
  fail "the Deno cache ${cache:-?} lacks ${what:-what the check needs}: fill it with \`deno task cache-deps\` where the npm registry is reachable (bench/README.md)"
fi

if [ "$quick" = 1 ]; then
  case_name=tiny-16px-b16 preset=tiny steps=${steps:-1}
  limit_compare=240 limit_plan=120
else
  case_name=resnet50x2-96px-b256-local preset=paper steps=${steps:-3}
  limit_compare=300 limit_plan=120
fi

# PyTorch on CUDA where it has it; its CPU only for --quick's tiny case.
# bench/torch_step.py builds torchvision's ResNet blocks: it needs both.
torch_flags=(--no-torch)
read -r device version < <("$python" -c '
try:
    import torch
except Exception:
    print("none -")
    raise SystemExit
try:
    import torchvision  # noqa: F401
except Exception:
    print("no-torchvision", torch.__version__)
    raise SystemExit
print("cuda" if torch.cuda.is_available() else "cpu", torch.__version__)
' 2>/dev/null || echo "none -")
case "$device" in
none) torch_note="no PyTorch for $python" ;;
no-torchvision) torch_note="PyTorch $version without a working torchvision (bench/torch_step.py needs it)" ;;
cpu)
  if [ "$quick" = 1 ]; then
    torch_flags=(--python "$python" --torch-device cpu)
    torch_note="PyTorch $version on its CPU"
  else
    torch_note="PyTorch $version has no CUDA here (its CPU is far too slow for this case)"
  fi
  ;;
*)
  torch_flags=(--python "$python" --torch-device cuda)
  torch_note="PyTorch $version on CUDA"
  ;;
esac

json_string() {
  printf '"%s"' "$(printf '%s' "$1" | sed 's/\\/\\\\/g; s/"/\\"/g' | tr '\n\t' '  ')"
}

# A stage over its time limit, or failing, prints one JSON line saying so.
stage_failed() { # backend, stage, seconds, exit code, output
  local why
  if [ "$4" = 124 ]; then why="timed out after $3 s"; else
    why="exit $4: $(printf '%s\n' "$5" | grep -v '^\s*$' | tail -1)"
  fi
  echo "{\"case\":$(json_string "$case_name"),\"backend\":$(json_string "$1"),\"stage\":$(json_string "$2"),\"error\":$(json_string "$why")}"
}

echo "# gpu_check: deno $("$deno" --version | head -1 | cut -d' ' -f2), cache ${cache:-?}, case $case_name, $steps steps, $torch_note"
echo "# vicreg backends"
timeout 120 "${run[@]}" cli/main.ts backends || echo "# vicreg backends: exit $?"

compare() { # backend, extra flags…
  local backend=$1 out code
  shift
  echo "# bench:compare --cases $case_name --backends $backend"
  out=$(timeout "$limit_compare" "${run[@]}" bench/compare.ts \
    --cases "$case_name" --backends "$backend" --steps "$steps" --warmup 1 \
    "$@" 2>&1)
  code=$?
  if [ $code = 0 ]; then printf '%s\n' "$out" | grep '^{'; else
    stage_failed "$backend" compare "$limit_compare" $code "$out"
  fi
}

compare webgpu "${torch_flags[@]}"

# tfjs-node-gpu is no lockfile package (its install step downloads
# libtensorflow): it runs only where it was cached with its library. A copy
# of the lockfile resolves it, so that deno.lock stays as it is.
echo "# tensorflow (tfjs-node-gpu)"
lock=$(mktemp -d)
trap 'rm -rf "$lock"' EXIT
cp deno.lock "$lock/deno.lock"
tf_flags=(--cached-only --lock="$lock/deno.lock")
# Its install script (the binding) runs only into a node_modules folder
# (bench/README.md "tfjs-node / tfjs-node-gpu"): use that one where it exists.
if [ -d node_modules/@tensorflow/tfjs-node-gpu ]; then
  tf_flags+=(--node-modules-dir=auto)
fi
if probe=$(timeout 60 "$deno" eval "${tf_flags[@]}" --ext=ts \
  'import { useBackend } from "@scaling-vicreg/backend"; await useBackend("tensorflow");' 2>&1); then
  run=("$deno" run "${tf_flags[@]}" -A)
  compare tensorflow --no-torch
  run=("$deno" run --cached-only --frozen -A)
else
  reason=$(printf '%s\n' "$probe" | grep -m1 'Backend "tensorflow"' |
    sed -E 's/^error: Uncaught (\(in promise\) )?BackendError: //')
  echo "{\"case\":$(json_string "$case_name"),\"backend\":\"tensorflow\",\"skipped\":$(json_string "${reason:-$(printf '%s\n' "$probe" | head -1)}")}"
fi

echo "# vicreg pretrain --preset $preset --backend webgpu --plan-only"
out=$(timeout "$limit_plan" "${run[@]}" cli/main.ts pretrain --preset "$preset" \
  --backend webgpu --plan-only 2>&1)
code=$?
plan=$(printf '%s\n' "$out" | grep -m1 '^Step: ' | sed 's/^Step: //')
if [ $code = 0 ] && [ -n "$plan" ]; then
  echo "{\"preset\":$(json_string "$preset"),\"backend\":\"webgpu\",\"plan\":$(json_string "$plan")}"
else
  case_name="preset $preset" stage_failed webgpu plan "$limit_plan" $code "$out"
fi
