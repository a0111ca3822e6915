#!/usr/bin/env bash
# ARM64 (the RK3588 class of board), as CI runs it: cross-builds the engine and its tests for
# aarch64 with Debian's g++-aarch64-linux-gnu (cmake/aarch64-linux-gnu.cmake), then runs the
# golden, tokenizer, image and kernel suites under qemu-user twice:
#   -cpu max         NEON + dotprod + i8mm: the best path, i8mm, must be the one picked
#   -cpu cortex-a72  ARMv8.0 without dotprod: the fallback, neon, must be the one picked
# then the kernel and Q8_0 golden suites as -cpu cortex-a76 (the RK3588's big core: dotprod).
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
  dpkg --print-foreign-architectures | grep -qx arm64 || $SUDO dpkg --add-architecture arm64
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
filter+=':KQuants*'  # the K-quant decode kernels of each ARM path (kquant_neon.h)
filter+='-GgufCli*:GgufBadInput*:*GgufGolden*:GgufConvertedPair*:GgufQ4Golden*:*Golden22B*'
filter+=':*avx*'  # the x86 kernel paths: skipped anyway
# The toolchain file's CMAKE_CROSSCOMPILING_EMULATOR (see there for LD_LIBRARY_PATH=/lib).
emulator=(qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/lib)
echo "image decoding under qemu: libjpeg-turbo and libpng (Debian's arm64 packages)"

# The two runs go side by side, one core each (qemu runs a test process at a tenth of native
# speed; pinned, each process sizes its thread pool to its one core). KernelThreads still runs
# every kernel with 1, 2 and 3 threads.
run() {  # cpu, core, log
  local t0=$SECONDS rc=0
  taskset -c "$2" "${emulator[@]}" -cpu "$1" build-arm64/smolvlm_tests --gtest_brief=1 \
    --gtest_filter="$filter" >"$3" 2>&1 || rc=$?
  echo "$rc $((SECONDS - t0))" >"$3.status"
}
ids=()  # the CPUs this script may use, from a list such as "0-3,8"
IFS=, read -ra ranges <<<"$(awk '/^Cpus_allowed_list/ {print $2}' /proc/self/status)"
for r in "${ranges[@]}"; do for ((i = ${r%-*}; i <= ${r#*-}; i++)); do ids+=("$i"); done; done
echo "== arm64: tests under qemu-aarch64 -cpu max and -cpu cortex-a72"
run max "${ids[0]}" build-arm64/qemu-max.log &
[ ${#ids[@]} -gt 1 ] || wait
run cortex-a72 "${ids[$((1 % ${#ids[@]}))]}" build-arm64/qemu-cortex-a72.log &
wait

failed=0
for pair in max:i8mm cortex-a72:neon; do
  cpu=${pair%%:*} want=${pair##*:} log=build-arm64/qemu-${pair%%:*}.log
  read -r rc secs <"$log.status"
  echo "== arm64: qemu-aarch64 -cpu $cpu ($secs s, expects kernel path $want)"
  cat "$log"
  if [ "$rc" -ne 0 ]; then
    echo "arm64 -cpu $cpu: tests failed (exit $rc)"
    failed=1
  elif ! grep -q "^\[ kernels  \] .*active: $want\$" "$log"; then
    echo "arm64 -cpu $cpu: expected kernel path $want, got: $(grep '^\[ kernels' "$log" || echo none)"
    failed=1
  else
    echo "== arm64 -cpu $cpu: passed on kernel path $want"
  fi
done
# The RK3588's own big core (Cortex-A76: dotprod, no i8mm): the dotprod path must be picked, and
# it runs the kernel suite and the Q8_0 (w8a8) golden model. About 40 s.
t0=$SECONDS log=build-arm64/qemu-cortex-a76.log
echo "== arm64: qemu-aarch64 -cpu cortex-a76, kernels and Q8_0 golden (expects kernel path dotprod)"
if ! "${emulator[@]}" -cpu cortex-a76 build-arm64/smolvlm_tests --gtest_brief=1 \
     --gtest_filter='Kernel*:GgufQ8Golden*-*avx*' >"$log" 2>&1; then
  cat "$log"
  echo "arm64 -cpu cortex-a76: tests failed"
  failed=1
elif ! grep -q "^\[ kernels  \] .*active: dotprod\$" "$log"; then
  echo "arm64 -cpu cortex-a76: expected kernel path dotprod, got: $(grep '^\[ kernels' "$log" || echo none)"
  failed=1
else
  grep -E '^\[ kernels|^\[  PASSED|worst cosine' "$log"
  echo "== arm64 -cpu cortex-a76: passed on kernel path dotprod ($((SECONDS - t0)) s)"
fi
echo "== arm64: done ($((SECONDS - start)) s)"
exit "$failed"
