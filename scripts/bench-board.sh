#!/usr/bin/env bash
# One command for the owner of a board (RK3588, Raspberry Pi 5, Jetson, ...) or any Linux box:
# installs what the build needs (Debian/Ubuntu packages, only the missing ones), builds smolvlm
# (Release) in build-board/, makes the full-size random SmolVLM2-256M GGUF pairs, measures
# decode, prefill, a vision tile, the 640x480 request and the machine's DRAM read bandwidth,
# with llama.cpp beside it where llama-bench / llama-mtmd-cli are on PATH (or --llama DIR), and
# prints Markdown to paste into an issue (also saved to bench-board-HOST.md).
#
#   scripts/bench-board.sh [--quick] [--threads N] [--runs N] [--llama DIR] [--models DIR]
#                          [--no-install] [--out FILE]
#
# --quick: one short round (a check that everything runs, not figures to compare). The models
# need ~2 GB in --models (default ~/.cache/smolvlm-board). bench/board_bench.py does the
# measuring.
set -euo pipefail
cd "$(dirname "$0")/.."

install=1 out="" driver_args=()
while [ $# -gt 0 ]; do
  case "$1" in
    --no-install) install=0 ;;
    --quick) driver_args+=("$1") ;;
    --threads | --runs | --llama | --models)
      [ $# -ge 2 ] || { echo "bench-board: $1 needs a value" >&2; exit 2; }
      driver_args+=("$1" "$2")
      shift ;;
    --out)
      [ $# -ge 2 ] || { echo "bench-board: --out needs a file" >&2; exit 2; }
      out=$2
      shift ;;
    -h | --help) sed -n '2,14p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "bench-board: unknown option $1 (see --help)" >&2; exit 2 ;;
  esac
  shift
done
out=${out:-bench-board-$(hostname -s 2>/dev/null || echo host).md}

# The build's packages (no test, video or server extras: they are optional in CMakeLists).
if [ "$install" -eq 1 ] && command -v apt-get >/dev/null 2>&1; then
  jpeg=libjpeg62-turbo-dev
  apt-cache show "$jpeg" >/dev/null 2>&1 || jpeg=libjpeg-dev
  pkgs=(cmake g++ make pkg-config "$jpeg" libpng-dev nlohmann-json3-dev libcurl4-openssl-dev
        python3 util-linux)
  missing=()
  for p in "${pkgs[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
  if [ ${#missing[@]} -gt 0 ]; then
    echo "== bench-board: installing ${missing[*]}" >&2
    SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends \
      "${missing[@]}" >/dev/null
  fi
fi
for tool in cmake python3; do
  command -v "$tool" >/dev/null 2>&1 || { echo "bench-board: $tool is missing" >&2; exit 1; }
done

echo "== bench-board: building (Release) in build-board/" >&2
launcher=()
command -v ccache >/dev/null 2>&1 && launcher=(-DCMAKE_CXX_COMPILER_LAUNCHER=ccache)
cmake -S . -B build-board -DCMAKE_BUILD_TYPE=Release -DSMOLVLM_BUILD_TESTS=OFF \
  "${launcher[@]}" >/dev/null
cmake --build build-board -j "$(nproc)" --target smolvlm smolvlm_kernel_bench >/dev/null

# llama.cpp's folder, where given or found: through llama_cpp_dir.sh, which drops CPU variants
# that die with SIGILL here (x86 VMs that list AMX without granting it).
for ((i = 0; i < ${#driver_args[@]}; i++)); do
  if [ "${driver_args[$i]}" = --llama ]; then
    driver_args[$((i + 1))]=$(bash bench/llama_cpp_dir.sh "${driver_args[$((i + 1))]}")
  fi
done

echo "== bench-board: measuring (the table is also written to $out)" >&2
python3 bench/board_bench.py --build build-board "${driver_args[@]}" | tee "$out"
echo "== bench-board: done; paste $out into an issue (README, \"Speed on your board\")" >&2
