#!/usr/bin/env bash
# Prints a folder of llama.cpp binaries that runs on this CPU: the one given (default
# /work/shared/tools/llama.cpp), or, where llama.cpp's pick of CPU variant dies with SIGILL,
# a copy without the variants that do (as on VMs that list AMX but do not grant it: its
# libggml-cpu-sapphirerapids.so). Used by compare_llamacpp.py and server_bench.sh.
#
#   bash bench/llama_cpp_dir.sh [DIR]     -> prints DIR or /tmp/llama-cpp-usable
set -euo pipefail
dir=${1:-/work/shared/tools/llama.cpp}
# A run that loads the CPU backend and computes (a few tokens of the tiny test model), so that
# an instruction the CPU lacks is met here and not in the middle of a benchmark.
tiny="$(cd "$(dirname "$0")/.." && pwd)/tests/fixtures/tiny-smolvlm2-gguf/tiny-text-Q8_0.gguf"
probe() {
  local rc=0
  LD_LIBRARY_PATH="$1${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}" "$1/llama-bench" -m "$tiny" -p 8 -n 2 \
    -r 1 -t 2 >/dev/null 2>&1 || rc=$?
  echo "$rc"
}
[ -x "$dir/llama-bench" ] || { echo "$dir"; exit 0; }  # nothing to check: the callers say so
rc=$(probe "$dir")
if [ "$rc" -ne 132 ] && [ "$rc" -ne 4 ]; then  # 132 = 128 + SIGILL
  echo "$dir"
  exit 0
fi
copy=/tmp/llama-cpp-usable
rm -rf "$copy"
cp -r "$dir" "$copy"
# The best variants first: drop them one by one until a run survives.
for variant in sapphirerapids zen4 icelake cooperlake cannonlake cascadelake skylakex alderlake; do
  rm -f "$copy/libggml-cpu-$variant.so"
  rc=$(probe "$copy")
  if [ "$rc" -ne 132 ] && [ "$rc" -ne 4 ]; then
    echo "llama_cpp_dir: llama.cpp's CPU variants up to $variant die with SIGILL here;" \
      "using $copy without them" >&2
    echo "$copy"
    exit 0
  fi
done
echo "llama_cpp_dir: every llama.cpp CPU variant dies with SIGILL on this machine" >&2
echo "$dir"
