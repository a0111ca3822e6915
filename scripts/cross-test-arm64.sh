#!/usr/bin/env bash
# ARM64 (the RK3588 class of board), as CI runs it: cross-builds the engine and its tests for
# aarch64 with Debian's g++-aarch64-linux-gnu (cmake/aarch64-linux-gnu.cmake), then runs the
# golden, tokenizer, image and kernel suites under qemu-user: -cpu max (NEON + dotprod + i8mm: the
# best path, i8mm, must be the one picked) on every suite; -cpu cortex-a72 (ARMv8.0 without
# dotprod: the fallback, neon) and -cpu cortex-a76 (the RK3588's big core: dotprod) on the
# kernel, K-quant and Q8_0 golden suites. Five runs, two at a time.
# Each run prints the kernel paths the CPU offers and the one the tests ran on.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$SECONDS

# The cross compiler, qemu-user, GoogleTest's sources (built for the target), and the target's
# libraries as Debian multiarch arm64 packages next to the amd64 ones (apt may move an amd64
# library to the arm64 one's version, as multiarch requires).
jpeg=libjpeg62-turbo-dev
apt-cache show "$jpeg" >/dev/null 2>&1 || jpeg=libjpeg-dev
pkgs=(g++-aarch64-linux-gnu qemu-user libgtest-dev nlohmann-json3-dev
      "$jpeg:arm64" libpng-dev:arm64 libcurl4-openssl-dev:arm64)
missing=()
for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
  grep -qx arm64 <<<"$(dpkg --print-foreign-architectures)" || $SUDO dpkg --add-architecture arm64
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "== arm64: packages ready ($((SECONDS - start)) s)"

echo "== arm64: cross build (Release)"
cmake -S . -B build-arm64 -DCMAKE_TOOLCHAIN_FILE=cmake/aarch64-linux-gnu.cmake \
  -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build-arm64 -j "$(nproc)" --target smolvlm_tests
echo "== arm64: built ($((SECONDS - start)) s)"

# What runs under qemu: the suites that stay inside the test process. Left out:
# - the suites that start the CLI or another program (system()/popen: BadInput, CliAsk, ChatCli,
#   GgufCli, GgufBadInput, PullCli, Rk35Seed, Rk35VlmNpu): from inside qemu the child is an arm64
#   program started by the build machine's shell, which runs it only where binfmt_misc is set up
#   for qemu. They test the command line, not the kernels; the x86 runs keep them.
# - GgufGolden, GgufConvertedPair and GgufQ4Golden: the same float and Q8_0 kernels as
#   TinyModel/Golden and GgufQ8Golden on other files (80 s a run under qemu); x86 keeps them.
# - Golden22B*: its model is made by `smolvlm random-model` (a child program, as above); the
#   kernels it runs are TinyModel/Golden's.
filter='TinyModel*:Golden*:Tokenizer*:Kernel*:Reference*:Image*:ChatTemplate*:ImageExpansion*'
filter+=':VideoExpansion*:Gguf*:Safetensors*:Floats*:Config*:LanczosResize*:BicubicResize*'
filter+=':NumberWords*:StreamDecoder*'
filter+=':KQuants*:Q4kPanels*'  # the K-quant decode kernels of each ARM path (kquant_neon.h)
filter+='-GgufCli*:GgufBadInput*:*GgufGolden*:GgufConvertedPair*:GgufQ4Golden*:*Golden22B*'
filter+=':*avx*'  # the x86 kernel paths: skipped anyway
# The toolchain file's CMAKE_CROSSCOMPILING_EMULATOR (see there for LD_LIBRARY_PATH=/lib).
emulator=(qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/lib)
echo "image decoding under qemu: libjpeg-turbo and libpng (Debian's arm64 packages)"

# Five runs under qemu, two at a time, one core each (qemu runs a test process at about a
# thirtieth of native speed; pinned, each process sizes its thread pool to its one core;
# KernelThreads still runs every kernel with 1, 2 and 3 threads). A queue hands the next run to
# whichever core is free, longest first, so neither core idles while the other has two left:
#   -cpu max (NEON + dotprod + i8mm: i8mm must be picked): every suite above, as the K-quant
#     golden models (a third of the work: 7 mixes converted and run) and two GoogleTest shards of
#     the rest;
#   -cpu cortex-a72 (ARMv8.0, no dotprod: neon must be picked) and -cpu cortex-a76 (the RK3588's
#     big core: dotprod must be picked): what differs between the ARM paths, the quantised
#     kernels, the K-quants and the Q8_0 (w8a8) golden model. The float kernels are one NEON
#     table shared by the three paths (arm::make_path), so the float golden model runs once, on max.
run() {  # name cpu core filter shard(index/total or -) expected-path
  local name=$1 cpu=$2 core=$3 filter=$4 shard=$5 want=$6 t0=$SECONDS rc=0
  local log=build-arm64/qemu-$name.log
  local shard_env=()
  [ "$shard" = - ] || shard_env=(GTEST_SHARD_INDEX="${shard%/*}" GTEST_TOTAL_SHARDS="${shard#*/}")
  env "${shard_env[@]}" taskset -c "$core" "${emulator[@]}" -cpu "$cpu" \
    build-arm64/smolvlm_tests --gtest_brief=1 --gtest_filter="$filter" >"$log" 2>&1 || rc=$?
  echo "$rc $((SECONDS - t0)) $cpu $want" >"$log.status"
}
ids=()  # the CPUs this script may use, from a list such as "0-3,8"
IFS=, read -ra ranges <<<"$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)"
for r in "${ranges[@]}"; do for ((i = ${r%-*}; i <= ${r#*-}; i++)); do ids+=("$i"); done; done
other_paths='Kernel*:KQuants*:Q4kPanels*:GgufQ8Golden*-*avx*'
# The vision precisions on paths without bf16 (TinyModel/GoldenVisionPrecision: 7 picture cases
# a path and a way) on the path each CPU picks: i8mm with the K-quant run, neon with the
# cortex-a72's (the generic path is the x86 run's; dotprod's int8 products are its kernel tests').
vision=TinyModel/GoldenVisionPrecision.*
runs=("max-kquant|max|GgufKQuantGolden*:$vision/i8mm_*|-|i8mm"
      "max-0|max|$filter:GgufKQuantGolden*:$vision|0/2|i8mm"
      "max-1|max|$filter:GgufKQuantGolden*:$vision|1/2|i8mm"
      "cortex-a72|cortex-a72|${other_paths%-*}:$vision/neon_*-*avx*|-|neon"
      "cortex-a76|cortex-a76|$other_paths|-|dotprod")
queue=build-arm64/qemu-queue
echo 0 >"$queue"
take() {  # prints the index of the next run, under a lock shared by the workers
  (
    flock 9
    read -r next <"$queue"
    echo $((next + 1)) >"$queue"
    echo "$next"
  ) 9>"$queue.lock"
}
worker() {  # core
  local i name cpu filt shard want
  while i=$(take) && [ "$i" -lt ${#runs[@]} ]; do
    IFS='|' read -r name cpu filt shard want <<<"${runs[$i]}"
    run "$name" "$cpu" "$1" "$filt" "$shard" "$want"
  done
}
echo "== arm64: ${#runs[@]} runs under qemu-aarch64, $((${#ids[@]} > 1 ? 2 : 1)) at a time"
worker "${ids[0]}" &
[ ${#ids[@]} -lt 2 ] || worker "${ids[1]}" &
wait

failed=0
for name in max-kquant max-0 max-1 cortex-a72 cortex-a76; do
  log=build-arm64/qemu-$name.log
  read -r rc secs cpu want <"$log.status"
  echo "== arm64: qemu-aarch64 -cpu $cpu ($name, $secs s, expects kernel path $want)"
  if [ "$rc" -ne 0 ]; then
    cat "$log"
    echo "arm64 -cpu $cpu ($name): tests failed (exit $rc)"
    failed=1
  # KernelPaths.ReportsTheDefaultPath prints the path; of the -cpu max runs, one shard runs it.
  # grep reads the files itself: `cat ... | grep -q` under pipefail fails at random when grep
  # stops at its match and cat is killed by SIGPIPE writing the rest (CI stop 35).
  elif ! grep -q "^\[ kernels  \] .*active: $want\$" "${log/max-*/max-0.log}" "${log/max-*/max-1.log}"; then
    echo "arm64 -cpu $cpu: expected kernel path $want, got: $(grep '^\[ kernels' "$log" || echo none)"
    failed=1
  else
    grep -E '^\[ kernels|^\[  PASSED|worst cosine' "$log"
    echo "== arm64 -cpu $cpu ($name): passed on kernel path $want"
  fi
done
echo "== arm64: done ($((SECONDS - start)) s)"
exit "$failed"
