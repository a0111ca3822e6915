#!/usr/bin/env bash
# The test suite, as CI runs it: a Release build and a Debug AddressSanitizer + UBSan build,
# every test in both (and the web page's browser tests after the Release ones), then a brief
# libFuzzer run of the file parsers, picture decoders and video input (scripts/fuzz.sh). The video
# sweep (VideoSweep) converts with guard pages after libswscale's destinations in both builds:
# AddressSanitizer does not see writes made inside libav*.
set -euo pipefail
cd "$(dirname "$0")/.."
jobs=$(nproc)
stage() { echo "== $1 (at $((SECONDS / 60))m$((SECONDS % 60))s)"; }  # CI's log shows where time goes
for cfg in release asan; do
  if [ "$cfg" = release ]; then
    flags=(-DCMAKE_BUILD_TYPE=Release)
  else
    # -O1 keeps the sanitizers' checks while the golden tests still run in seconds; -g1 (line
    # tables: the reports' file:line) builds ~30% faster than full debug info.
    flags=(-DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" -DSMOLVLM_SANITIZE=ON)
  fi
  stage "build ($cfg)"
  cmake -S . -B "build-$cfg" "${flags[@]}" >/dev/null
  # Release builds everything (benchmarks and examples must compile too); the sanitizer build
  # only what ctest runs (the test program and the programs it starts).
  targets=()
  [ "$cfg" = release ] || targets=(--target smolvlm_tests)
  cmake --build "build-$cfg" -j "$jobs" "${targets[@]}"
  stage "test ($cfg)"
  ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
    ctest --test-dir "build-$cfg" --output-on-failure -j "$jobs"
  if [ "$cfg" = release ]; then
    # The web page of smolvlm serve in Debian's chromium (headless), against servers on the tiny
    # model the test starts itself; screenshots go to build-release/webui-artifacts/.
    stage "web page in a browser (release)"
    [ -d tests/webui/node_modules/playwright-core ] && [ -d tests/webui/node_modules/axe-core ] &&
      [ -d tests/webui/node_modules/openai ] ||
      npm ci --prefix tests/webui --no-audit --no-fund --loglevel=error
    SMOLVLM_BIN=build-release/smolvlm node --test tests/webui/webui.test.mjs
    # The API as the official OpenAI Node SDK (npm `openai`) calls it.
    stage "the OpenAI SDK against serve (release)"
    SMOLVLM_BIN=build-release/smolvlm node --test tests/webui/openai_sdk.test.mjs
  fi
done
# The suites that run things at once (two Engines, Chats on two threads, the Scheduler's slots)
# under ThreadSanitizer: only their own test program is built.
stage "build (tsan)"
cmake -S . -B build-tsan -DCMAKE_BUILD_TYPE=Debug -DCMAKE_CXX_FLAGS_DEBUG="-g1 -O1" \
  -DSMOLVLM_SANITIZE_THREAD=ON >/dev/null
cmake --build build-tsan -j "$jobs" --target smolvlm_concurrency_tests
stage "test (tsan)"
TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1 ./build-tsan/smolvlm_concurrency_tests
# The file parsers and decoders under libFuzzer, briefly: SMOLVLM_FUZZ_SECONDS per target where
# set (0 skips), else fuzz.sh's defaults (30 s for gguf and safetensors, 20 s for the others).
fuzz_secs=${SMOLVLM_FUZZ_SECONDS:-}
if [ "${fuzz_secs:-1}" -gt 0 ]; then
  stage "fuzz (${fuzz_secs:-default} s per target)"
  bash scripts/fuzz.sh ${fuzz_secs:+"$fuzz_secs"}
fi
stage "all stages done"
