#!/usr/bin/env bash
# The fuzz test (test_sparse_gzip_fuzz.py) against a copy of the C reader built with
# AddressSanitizer and UndefinedBehaviorSanitizer: any out-of-bounds access, use after free or
# undefined operation in _sparse_gzip.c aborts the run with a report. Not run in CI (slow).
#
#   tests/flows/codecs/asan.sh [pytest arguments...]     e.g. -k crafted
#   RGA_FUZZ_SECONDS=120 RGA_FUZZ_SEED=5 tests/flows/codecs/asan.sh
#
# The copy lives in a temporary directory: flows/__init__.py, flows/codecs/*.py and the
# instrumented extension. The test runs from there, with it first on PYTHONPATH, so the working
# tree's own build is not the one imported (checked before the test starts). Python itself is not instrumented, so the
# ASan runtime is preloaded; PYTHONMALLOC=malloc lets ASan see the buffers Python allocates.
# Leak checking is off: an uninstrumented interpreter "leaks" by design at exit.
set -euo pipefail

repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)
python=${PYTHON:-python}
cc=${CC:-gcc}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/flows/codecs"
cp "$repo/flows/__init__.py" "$work/flows/"
cp "$repo"/flows/codecs/*.py "$work/flows/codecs/"
include=$("$python" -c 'import sysconfig; print(sysconfig.get_paths()["include"])')
suffix=$("$python" -c 'import sysconfig; print(sysconfig.get_config_var("EXT_SUFFIX"))')
"$cc" -shared -fPIC -O1 -g -fno-omit-frame-pointer \
    -fsanitize=address,undefined -fno-sanitize-recover=all \
    -I"$include" "$repo/flows/codecs/_sparse_gzip.c" -o "$work/flows/codecs/_sparse_gzip$suffix"

export LD_PRELOAD=$("$cc" -print-file-name=libasan.so)
export ASAN_OPTIONS=detect_leaks=0:abort_on_error=1
export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export PYTHONMALLOC=malloc
export PYTHONPATH="$work${PYTHONPATH:+:$PYTHONPATH}"
export RGA_FUZZ_SECONDS=${RGA_FUZZ_SECONDS:-60}
cd "$work"
# The instrumented module is imported before pytest starts, and checked to be the copy; every
# later import of flows.codecs (the tests') then gets it. --confcutdir: tests/conftest.py would
# import all of flows, which the copy does not hold.
"$python" - "$work" -q -p no:cacheprovider -rP --confcutdir="$repo/tests/flows" \
    "$repo/tests/flows/codecs/test_sparse_gzip_fuzz.py" "$@" <<'PY'
import sys

import flows.codecs._sparse_gzip as extension
import pytest

work, arguments = sys.argv[1], sys.argv[2:]
if not extension.__file__.startswith(work + "/"):
    sys.exit(f"the instrumented copy is not the one imported: {extension.__file__}")
print("testing", extension.__file__)
sys.exit(pytest.main(arguments))
PY
