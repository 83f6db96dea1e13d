#!/usr/bin/env bash
# Builds the HXFR parser fuzz target with clang++ (libFuzzer + ASan + UBSan) and runs it for a
# bounded time, seeded with the golden vectors of docs/protocol.md (the bytes the unit test
# checks). Usage: tests/fuzz/run-fuzz.sh SECONDS WORKDIR HXFR_INCLUDE_DIR HXFR_SOURCE...
#   WORKDIR keeps the binary, the seeds, the growing corpus and any crash artifacts, so a later
#   run starts from what earlier runs found. The library's include directory and sources are
#   handed over by meson from gst-libs/hxfr/meson.build (hxfr_inc_dir, hxfr_fuzz_sources), so
#   this script names no source path of the library: run it as
#   `meson test -C build --suite fuzz` (or copy the arguments from `meson test --list -v`).
# Exit status: 0 no crash; 77 (meson's "skipped") when clang++ or libFuzzer is missing
# (Debian: clang, libclang-rt-14-dev); otherwise non-zero: a crash, a sanitizer report, a
# property violation (trap), a timeout or an out-of-memory, with the input in WORKDIR/artifacts.
set -euo pipefail

if [ $# -lt 4 ] || ! [[ "$1" =~ ^[0-9]+$ ]] || [ "$1" -lt 1 ]; then
  echo "usage: $0 SECONDS WORKDIR HXFR_INCLUDE_DIR HXFR_SOURCE..." >&2
  exit 2
fi
seconds=$1
src=$(cd "$(dirname "$0")/../.." && pwd)
work=$2
hxfr_inc=$3
shift 3
hxfr_sources=("$@")
mkdir -p "$work/seeds" "$work/corpus" "$work/artifacts"

cxx=${CXX_FUZZ:-clang++}
if ! command -v "$cxx" >/dev/null 2>&1; then
  echo "SKIP: $cxx not found (Debian: apt-get install clang libclang-rt-14-dev)"
  exit 77
fi
# -fsanitize=fuzzer links libclang_rt.fuzzer from libclang-rt-14-dev; without it the link fails.
probe="$work/probe.cpp"
echo 'extern "C" int LLVMFuzzerTestOneInput(const unsigned char *, unsigned long) { return 0; }' \
  >"$probe"
if ! "$cxx" -fsanitize=fuzzer "$probe" -o "$work/probe" 2>/dev/null; then
  echo "SKIP: $cxx cannot link -fsanitize=fuzzer (Debian: apt-get install libclang-rt-14-dev)"
  exit 77
fi

echo "building $work/hxfr-parser-fuzz with $("$cxx" --version | head -1)"
"$cxx" -std=c++17 -g -O1 -fno-omit-frame-pointer \
  -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=all \
  -Wall -Wextra -Werror \
  -I "$hxfr_inc" \
  "${hxfr_sources[@]}" \
  "$src/tests/fuzz/hxfr-parser-fuzz.cpp" \
  -o "$work/hxfr-parser-fuzz"

# Seeds: every golden vector alone, and all of them back to back as one stream.
python3 - "$src/docs/protocol.md" "$work/seeds" <<'PY'
import os, sys
doc, out = sys.argv[1], sys.argv[2]
name, block, blocks, inside = None, [], {}, False
for line in open(doc):
    if line.startswith("<!-- golden: "):
        name = line.split()[2]
    elif line.startswith("```"):
        if inside and name:
            blocks[name] = bytes(int(t, 16) for l in block
                                 for t in l.split("|")[0].split()[1:])
            name = None
        inside, block = not inside, []
    elif inside:
        block.append(line)
if not blocks:
    sys.exit("no golden vectors in " + doc)
for n, b in blocks.items():
    open(os.path.join(out, n + ".bin"), "wb").write(b)
open(os.path.join(out, "all-in-one-stream.bin"), "wb").write(b"".join(blocks.values()))
print(f"{len(blocks)} golden vectors as seeds")
PY

echo "fuzzing for ${seconds}s"
status=0
# libFuzzer exits 77 on a crash by default, which meson would report as a skip: use 1 and 2.
(cd "$work" && ./hxfr-parser-fuzz \
  -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=70000 \
  -error_exitcode=1 -timeout_exitcode=2 -print_final_stats=1 \
  -artifact_prefix="$work/artifacts/" "$work/corpus" "$work/seeds") || status=$?
if [ "$status" -ne 0 ]; then
  echo "FAIL: the fuzzer stopped with status $status; inputs in $work/artifacts:" >&2
  ls -l "$work/artifacts" >&2 || true
  exit "$status"
fi
echo "no crash in ${seconds}s; corpus: $(find "$work/corpus" -type f | wc -l) inputs"
