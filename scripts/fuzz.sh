#!/usr/bin/env bash
# Builds the libFuzzer targets (clang with -fsanitize=fuzzer,address,undefined) and runs each for
# a while from its seed corpus in fuzz/corpus/<target>/. A crash leaves its input in build-fuzz/
# and fails the script: fix the code, then copy the input into fuzz/regressions/<target>/ so the
# test suite replays it from then on (see fuzz/README.md).
#
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET]
#
# Without SECONDS, the model-file parsers (gguf, safetensors) run 30 s each and the other targets
# (config, tokenizer, messages, jpeg, png, pictures, chat_request, video) 20 s each; with it, every
# target runs that long.
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-}
cxx=${CXX_FUZZ:-clang++}
if ! command -v "$cxx" >/dev/null; then
  echo "fuzz.sh: $cxx not found (Debian/Ubuntu: apt-get install clang)" >&2
  exit 1
fi
out=build-fuzz
mkdir -p "$out"
rm -f "$out"/crash-*
flags=(-std=c++20 -g -O1 -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined
       -Iinclude -Isrc -Iapps/smolvlm)
# What every target links: safe reads, outside text (bounded JSON, quoted input), output paths.
common=(src/formats/mapped_file.cpp src/formats/output_file.cpp src/util/input_text.cpp
        src/util/json_brief.cpp)
# The builds run side by side, one per core; a failed one leaves build-failed behind.
rm -f "$out/build-failed"
build() {  # build NAME SOURCES... [-lLIB...]
  local name=$1
  shift
  while [ "$(jobs -rp | wc -l)" -ge "$(nproc)" ]; do wait -n || true; done
  echo "== build fuzz_$name"
  { "$cxx" "${flags[@]}" "$@" -o "$out/fuzz_$name" ||
      { echo "fuzz.sh: fuzz_$name did not build" >&2; touch "$out/build-failed"; }; } &
}
build gguf fuzz/fuzz_gguf.cpp src/formats/gguf_read.cpp src/formats/tensor.cpp "${common[@]}"
build safetensors fuzz/fuzz_safetensors.cpp src/formats/safetensors.cpp src/formats/tensor.cpp \
  "${common[@]}"
build config fuzz/fuzz_config.cpp src/model/config.cpp "${common[@]}"
build tokenizer fuzz/fuzz_tokenizer.cpp src/text/tokenizer.cpp src/text/unicode.cpp "${common[@]}"
build messages fuzz/fuzz_messages.cpp apps/smolvlm/messages.cpp "${common[@]}"
# The picture decoders with each format library this machine has (as CMakeLists.txt finds them).
image_flags=()
for spec in "WEBP:libwebp libwebpdemux" "TIFF:libtiff-4" "AVIF:libavif" "HEIF:libheif"; do
  # shellcheck disable=SC2086
  if pkg-config --exists ${spec#*:} 2>/dev/null; then
    image_flags+=("-DSMOLVLM_HAVE_${spec%%:*}=1" $(pkg-config --cflags --libs ${spec#*:}))
  fi
done
if [ -f /usr/include/gif_lib.h ]; then image_flags+=(-DSMOLVLM_HAVE_GIF=1 -lgif); fi
build image fuzz/fuzz_image.cpp src/vision/image.cpp src/vision/picture_*.cpp "${common[@]}" \
  -ljpeg -lpng "${image_flags[@]}"
specs=(gguf:gguf:30 safetensors:safetensors:30 config:config:20 tokenizer:tokenizer:20
       messages:messages:20 jpeg:image:20 png:image:20 pictures:image:20)
# The server's request parser and stop filter, where cpp-httplib (and so the server) is built.
if [ -f /usr/include/httplib.h ]; then
  build chat_request fuzz/fuzz_chat_request.cpp src/server/request.cpp src/net/remote_fetch.cpp \
    src/server/response_format.cpp src/constrain/*.cpp \
    src/server/text_stream.cpp "${common[@]}" -lcurl
  specs+=(chat_request:chat_request:20)
fi
# Video bytes from memory (container, decoder, conversion), where FFmpeg's libraries are installed.
if pkg-config --exists libavformat libavcodec libswscale libavutil 2>/dev/null; then
  # shellcheck disable=SC2046
  build video fuzz/fuzz_video.cpp src/video/video_reader.cpp src/video/libav.cpp \
    src/video/sampling.cpp $(pkg-config --libs libavformat libavcodec libswscale libavutil)
  specs+=(video:video:20)
fi
wait
[ ! -e "$out/build-failed" ] || exit 1

# target:binary:default seconds. jpeg, png and pictures are one decoder binary fed from three
# corpora.
# The targets run side by side, one per core (each fuzzer is one process on one core), each into
# its own log, printed when it ends.
run_target() {  # spec
  local target binary default_secs
  IFS=: read -r target binary default_secs <<<"$1"
  local run_secs=${secs:-$default_secs}
  # A scratch corpus: what the fuzzer finds stays out of the source tree.
  local work="$out/corpus-$target"
  mkdir -p "$work"
  cp -n fuzz/corpus/"$target"/* "$work"/ 2>/dev/null || true
  if [ -d fuzz/regressions/"$target" ]; then cp -n fuzz/regressions/"$target"/* "$work"/ 2>/dev/null || true; fi
  {
    echo "== fuzz $target for ${run_secs}s"
    ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 \
      "$out/fuzz_$binary" "$work" -max_total_time="$run_secs" -max_len=65536 -rss_limit_mb=2048 \
      -malloc_limit_mb=1024 -timeout=10 -artifact_prefix="$out/crash-$target-" -print_final_stats=1 \
      2>&1 | grep -E "^(#[0-9]+ +DONE|Done|==[0-9]+==ERROR|SUMMARY|stat::number_of_executed_units|INFO: Seed)" || true
  } >"$out/log-$target" 2>&1
}
parallel=$(nproc)
running=0
for spec in "${specs[@]}"; do
  if [ "$running" -ge "$parallel" ]; then
    wait -n
    running=$((running - 1))
  fi
  run_target "$spec" &
  running=$((running + 1))
done
wait
failed=0
for spec in "${specs[@]}"; do
  target=${spec%%:*}
  cat "$out/log-$target"
  if ls "$out"/crash-"$target"-* >/dev/null 2>&1; then
    echo "fuzz.sh: the $target target failed on $(ls "$out"/crash-"$target"-* | head -1)" >&2
    failed=1
  fi
done
[ "$failed" -eq 0 ] || exit 1
echo "fuzz: no findings"
