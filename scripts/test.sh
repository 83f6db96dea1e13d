#!/usr/bin/env bash
# Runs every test suite on a fresh Debian 12: installs the missing Debian
# packages, builds with warnings as errors, runs all suites (unit, qemu, ...),
# then the unit and qemu suites once more under valgrind (definite leaks and
# memory errors fail them).
set -euo pipefail
cd "$(dirname "$0")/.."

bash scripts/install-deps.sh

BUILD=${BUILD_DIR:-build-tests}
if [ -f "$BUILD/build.ninja" ]; then
  meson configure "$BUILD" -Dwerror=true -Dtests=enabled -Dtest-vm=enabled
else
  meson setup "$BUILD" -Dwerror=true -Dtests=enabled -Dtest-vm=enabled
fi
ninja -C "$BUILD"

status=0
meson test -C "$BUILD" --print-errorlogs --num-processes 2 || status=1
meson test -C "$BUILD" --setup valgrind --suite unit --suite qemu --print-errorlogs --num-processes 1 || status=1

# One plain summary line over both runs.
python3 - "$BUILD/meson-logs/testlog.json" "$BUILD/meson-logs/testlog-valgrind.json" <<'PY'
import json, sys
counts = {"OK": 0, "FAIL": 0, "SKIP": 0}
for path in sys.argv[1:]:
    try:
        for line in open(path):
            result = json.loads(line).get("result", "FAIL")
            key = result if result in counts else "FAIL"
            counts[key] += 1
    except FileNotFoundError:
        pass
print(f"tests: {counts['OK']} passed, {counts['FAIL']} failed, {counts['SKIP']} skipped")
PY
exit $status
