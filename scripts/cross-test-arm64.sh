#!/usr/bin/env bash
# ARM64 (the RK3588 class of board), as CI runs it: cross-builds the engine and its tests for
# aarch64 with Debian's g++-aarch64-linux-gnu (cmake/aarch64-linux-gnu.cmake), then runs the
# golden, tokenizer, image and kernel suites under qemu-user twice:
#   -cpu max         NEON + dotprod + i8mm: the best path, i8mm, must be the one picked
#   -cpu cortex-a72  ARMv8.0 without dotprod: the fallback, neon, must be the one picked
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

# What runs under qemu: every suite that stays inside the test process. Left out: the suites
# that start the CLI or another program (system()/popen: BadInput, CliAsk, ChatCli, GgufCli,
# GgufBadInput, PullCli, Rk35Seed, Rk35VlmNpu). From inside qemu the child is an arm64 program
# started by the build machine's shell, which only runs it where binfmt_misc is set up for qemu.
# Those suites test the command line, not the kernels; the x86 runs keep them.
filter='TinyModel*:Golden*:Tokenizer*:Kernel*:Reference*:Image*:ChatTemplate*:ImageExpansion*'
filter+=':VideoExpansion*:Gguf*:Safetensors*:Floats*:Config*:LanczosResize*:BicubicResize*'
filter+=':NumberWords*:StreamDecoder*'
filter+='-GgufCli*:GgufBadInput*:*avx*'  # (and the x86 kernel paths, skipped anyway)
# The toolchain file's CMAKE_CROSSCOMPILING_EMULATOR (see there for LD_LIBRARY_PATH=/lib).
emulator=(qemu-aarch64 -L /usr/aarch64-linux-gnu -E LD_LIBRARY_PATH=/lib)
echo "image decoding under qemu: libjpeg-turbo and libpng (Debian's arm64 packages)"

run() {
  local cpu=$1 want=$2 t0=$SECONDS log=build-arm64/qemu-$1.log
  echo "== arm64: tests under qemu-aarch64 -cpu $cpu (expects kernel path $want)"
  if ! "${emulator[@]}" -cpu "$cpu" build-arm64/smolvlm_tests --gtest_brief=1 \
       --gtest_filter="$filter" 2>&1 | tee "$log"; then
    echo "arm64 -cpu $cpu: tests failed"
    return 1
  fi
  if ! grep -q "^\[ kernels  \] .*active: $want$" "$log"; then
    echo "arm64 -cpu $cpu: expected kernel path $want, got: $(grep '^\[ kernels' "$log" || echo none)"
    return 1
  fi
  echo "== arm64 -cpu $cpu: passed on kernel path $want ($((SECONDS - t0)) s)"
}
run max i8mm
run cortex-a72 neon
echo "== arm64: done ($((SECONDS - start)) s)"
