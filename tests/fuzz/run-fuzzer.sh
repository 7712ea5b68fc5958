#!/usr/bin/env bash
# Runs one herd fuzzer for a bounded time: run-fuzzer.sh NAME [SECONDS]
#   NAME     proto, config or web
#   SECONDS  run time (default 30); the environment variable HERD_FUZZ_SECONDS overrides it.
# Environment (ctest sets the first three; see tests/fuzz/CMakeLists.txt):
#   HERD_FUZZ_BUILD_DIR  work directory: the clang build, the corpora, crash artifacts
#                        (default: build/fuzz-build under the repository)
#   HERD_FUZZ_BIN_DIR    where proto_fuzz, config_fuzz, web_fuzz and proto_seeds already are (clang main
#                        build); unset: build them with clang++ into $HERD_FUZZ_BUILD_DIR/build
#   HERD_FUZZ_CXX        the clang++ to build with (default: clang++ found in PATH)
#   HERD_FUZZ_JOBS       parallel jobs of that build (default 2)
# Exits 0 when no input crashed, 77 (ctest: SKIPPED) when clang++ or libFuzzer is missing,
# and non-zero otherwise; libFuzzer writes a crashing input to $HERD_FUZZ_BUILD_DIR/artifacts/.
set -euo pipefail

name=${1:?usage: run-fuzzer.sh proto|config|web [SECONDS]}
seconds=${HERD_FUZZ_SECONDS:-${2:-30}}
case $name in proto|config|web) ;; *) echo "run-fuzzer.sh: unknown fuzzer '$name'" >&2; exit 2 ;; esac

here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
work=${HERD_FUZZ_BUILD_DIR:-$root/build/fuzz-build}
mkdir -p "$work"

if [ -n "${HERD_FUZZ_BIN_DIR:-}" ]; then
  bin=$HERD_FUZZ_BIN_DIR
else
  cxx=${HERD_FUZZ_CXX:-}
  if [ -z "$cxx" ] || [[ $cxx == *NOTFOUND ]]; then
    cxx=$(command -v clang++ || command -v clang++-14 || true)
  fi
  if [ -z "$cxx" ]; then
    echo "SKIP: clang++ not found; the fuzzers need clang's -fsanitize=fuzzer (apt install clang)"
    exit 77
  fi
  bin=$work/build
  # One build at a time: fuzz.proto and fuzz.config run in parallel under ctest -j.
  exec 9>"$work/build.lock"
  flock 9
  if [ ! -f "$bin/CMakeCache.txt" ]; then
    probe=$(mktemp -d "${TMPDIR:-/tmp}/herd-fuzz-probe.XXXXXX")
    printf '%s\n' 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char*, unsigned long) { return 0; }' \
      >"$probe/probe.cc"
    if ! "$cxx" -fsanitize=fuzzer,address "$probe/probe.cc" -o "$probe/probe" >"$probe/log" 2>&1; then
      echo "SKIP: $cxx cannot link -fsanitize=fuzzer,address (libFuzzer/ASan runtime missing):"
      cat "$probe/log"
      rm -rf "$probe"
      exit 77
    fi
    rm -rf "$probe"
    echo "configuring the fuzz build with $cxx in $bin"
    cmake -S "$here" -B "$bin" -DCMAKE_CXX_COMPILER="$cxx" -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  fi
  start=$(date +%s)
  cmake --build "$bin" -j"${HERD_FUZZ_JOBS:-2}" --target proto_fuzz config_fuzz web_fuzz proto_seeds
  echo "fuzz build up to date in $(( $(date +%s) - start )) s"
  flock -u 9
  exec 9>&-
fi

# The corpus persists in $work, so later runs start from what earlier ones found.
corpus=$work/corpus/$name
mkdir -p "$corpus" "$work/artifacts"
if [ "$name" = proto ]; then
  "$bin/proto_seeds" "$corpus"
  max_len=4096
elif [ "$name" = web ]; then
  # A job spec, then a path, a query value and a Cookie header (see web_fuzz.cc).
  printf '%s' '{"command": ["python", "train.py"], "cwd": "/home/a", "gpus": 0.5, "memory": "16G", "env": {"A": "1"}, "after": ["3:ok"]}' \
    >"$corpus/spec.json"
  printf '/api/v1/jobs/7/cancel\nRUNNING,PENDING\nherd_session=abc; herd_csrf=x' >"$corpus/request"
  printf '/api/v1/jobs/7/log\n65536\nherd_session=abc' >"$corpus/log"
  printf '/api/v1/jobs/7/hold\n1\nherd_session=abc; herd_csrf=x' >"$corpus/hold"
  max_len=8192
else
  cp "$root/etc/herd.toml" "$corpus/herd.toml"
  max_len=8192
fi

log=$work/$name.log
echo "running ${name}_fuzz for $seconds s (corpus $corpus)"
set +e
"$bin/${name}_fuzz" -max_total_time="$seconds" -rss_limit_mb=2048 -max_len=$max_len \
  -timeout=10 -print_final_stats=1 -artifact_prefix="$work/artifacts/$name-" "$corpus" \
  >"$log" 2>&1
rc=$?
set -e
if [ $rc -ne 0 ]; then
  tail -n 60 "$log"
  echo "FAIL: ${name}_fuzz exited $rc; the input that crashed is in $work/artifacts/"
  exit $rc
fi
runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log")
execs=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log")
units=$(ls "$corpus" | wc -l)
echo "${name}_fuzz: ${runs:-?} executions in $seconds s (${execs:-?}/s), no crash; corpus $units inputs"
