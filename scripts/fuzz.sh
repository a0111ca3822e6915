#!/usr/bin/env bash
# Builds the libFuzzer targets for the GGUF and safetensors parsers and the server's request
# parser (clang with -fsanitize=fuzzer,address,undefined) and runs each for a while from the
# seed corpus in fuzz/corpus/. A crash leaves its input in build-fuzz/ and fails the script: fix
# the parser, then copy the input into fuzz/regressions/<target>/ so the test suite replays it.
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]   (default 30)
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
cxx=${CXX_FUZZ:-clang++}
if ! command -v "$cxx" >/dev/null; then
  echo "fuzz.sh: $cxx not found (Debian/Ubuntu: apt-get install clang)" >&2
  exit 1
fi
out=build-fuzz
mkdir -p "$out"
rm -f "$out"/crash-*
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Iinclude -Isrc)
common=(src/formats/tensor.cpp src/formats/mapped_file.cpp)
"$cxx" "${flags[@]}" fuzz/fuzz_gguf.cpp src/formats/gguf.cpp "${common[@]}" -o "$out/fuzz_gguf"
"$cxx" "${flags[@]}" fuzz/fuzz_safetensors.cpp src/formats/safetensors.cpp "${common[@]}" \
  -o "$out/fuzz_safetensors"
targets=(gguf safetensors)
# The server's request parser, where cpp-httplib (and so the server) is built.
if [ -f /usr/include/httplib.h ]; then
  "$cxx" "${flags[@]}" fuzz/fuzz_chat_request.cpp src/server/request.cpp src/server/remote_fetch.cpp \
    src/server/text_stream.cpp -lcurl -o "$out/fuzz_chat_request"
  targets+=(chat_request)
fi
for target in "${targets[@]}"; do
  # A scratch corpus: what the fuzzer finds stays out of the source tree.
  work="$out/corpus-$target"
  mkdir -p "$work"
  cp -n fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
  if [ -d fuzz/regressions/"$target" ]; then cp -n fuzz/regressions/"$target"/* "$work"/ 2>/dev/null || true; fi
  echo "== fuzz $target for ${secs}s"
  ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
    "$out/fuzz_$target" "$work" -max_total_time="$secs" -max_len=65536 -rss_limit_mb=2048 \
    -malloc_limit_mb=1024 -timeout=10 -artifact_prefix="$out/crash-$target-" -print_final_stats=1 \
    2>&1 | grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+==ERROR|SUMMARY|stat::number_of_executed_units|INFO: Seed)" || true
  if ls "$out"/crash-"$target"-* >/dev/null 2>&1; then
    echo "fuzz.sh: the $target parser failed on $(ls "$out"/crash-"$target"-* | head -1)" >&2
    exit 1
  fi
done
echo "fuzz: no findings"
