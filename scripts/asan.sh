#!/usr/bin/env bash
# AddressSanitizer + UndefinedBehaviorSanitizer run of the native addon: builds the addon
# with -fsanitize=address,undefined into a separate tree (the normal build/ is untouched),
# then runs the kernel parity suites, the native size sweep and the fuzz suite against it
# with libasan preloaded into node (node itself is not ASan-built, hence LD_PRELOAD and
# verify_asan_link_order=0; V8's own allocations make leak checking meaningless, hence
# detect_leaks=0). Any sanitizer report aborts the test process, failing the run.
#
#   npm run test:asan                      # default suites
#   FTUNE_ASAN_TESTS="test/backend/nn.test" npm run test:asan   # chosen suites (no .ts)
#   FTUNE_FUZZ_ITERS=2000 npm run test:asan
set -euo pipefail

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
WORK=${FTUNE_ASAN_DIR:-${TMPDIR:-/tmp}/ftune-asan-$(id -u)}
DATA=${FTUNE_TEST_DATA:-$(cd "$ROOT/.." && pwd)/shared/data}
TESTS=${FTUNE_ASAN_TESTS:-"test/backend/gemm.test test/backend/attention-tiled.test test/backend/attention-rope.test test/backend/nn.test test/backend/nn-checks.test test/backend/grad.test test/backend/grad-checks.test test/quant/linear4bit.test test/quant/tables.test test/quant/quantize.test test/reliability/bad-input-native.test test/reliability/fuzz.test"}
SAN="-fsanitize=address,undefined -fno-sanitize-recover=undefined -fno-omit-frame-pointer -g"

NODE_GYP=${NODE_GYP:-}
if [ -z "$NODE_GYP" ]; then
  for cand in "$(dirname "$(command -v npm)")/../lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js" \
              /usr/lib/node_modules/npm/node_modules/node-gyp/bin/node-gyp.js; do
    if [ -f "$cand" ]; then NODE_GYP=$cand; break; fi
  done
fi
[ -n "$NODE_GYP" ] || { echo "asan.sh: cannot find node-gyp; set NODE_GYP" >&2; exit 2; }
NODEDIR=${NODEDIR:-$(dirname "$(dirname "$(command -v node)")")}

LIBASAN=$(gcc -print-file-name=libasan.so)
LIBUBSAN=$(gcc -print-file-name=libubsan.so)
[ -f "$LIBASAN" ] || { echo "asan.sh: libasan not found (install gcc's libasan)" >&2; exit 2; }

echo "asan.sh: building the sanitized addon in $WORK" >&2
rm -rf "$WORK"
mkdir -p "$WORK"
cp -r "$ROOT/binding.gyp" "$ROOT/native" "$ROOT/package.json" "$WORK/"
ln -s "$ROOT/node_modules" "$WORK/node_modules"
(cd "$ROOT" && npx tsc -p tsconfig.json --outDir "$WORK/dist")
(cd "$WORK" && CXXFLAGS="$SAN" LDFLAGS="-fsanitize=address,undefined" \
  node "$NODE_GYP" rebuild --nodedir="$NODEDIR" >"$WORK/build.log" 2>&1) || { tail -30 "$WORK/build.log" >&2; exit 1; }
ldd "$WORK/build/Release/ftune_native.node" | grep -q libasan || { echo "asan.sh: the addon is not linked against libasan" >&2; exit 1; }

FILES=()
for t in $TESTS; do FILES+=("dist/$t.js"); done
echo "asan.sh: running ${#FILES[@]} suites under ASan + UBSan" >&2
cd "$WORK"
LD_PRELOAD="$LIBASAN $LIBUBSAN" \
ASAN_OPTIONS="detect_leaks=0:verify_asan_link_order=0:abort_on_error=1:allocator_may_return_null=1${ASAN_OPTIONS:+:$ASAN_OPTIONS}" \
UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1" \
FTUNE_TEST_DATA="$DATA" \
  node --test --test-concurrency=1 "${FILES[@]}"
echo "asan.sh: clean (no sanitizer reports)" >&2
