#!/usr/bin/env bash
# plants.sh: plants known bugs in a scratch worktree of HEAD, one at a time,
# and checks that the unmodified-otherwise default-build tests, run under
# the fake driver, fail with the fake's message naming each bug. First the
# harness runs unplanted and must pass: the fake must not cry wolf.
#
#   make fake-cuda && bash kernels/fakecuda/plants.sh   (or make fake-cuda-plants)
#
# A plant whose anchor text is gone from the source (the code changed) is a
# failure too: update the plant here.
set -euo pipefail
root=$(git rev-parse --show-toplevel)
fake=$root/.build/fake-cuda
[ -e "$fake/libcuda.so.1" ] || { echo "plants.sh: build the fake first (make fake-cuda)" >&2; exit 2; }
wt=$(mktemp -d /tmp/fakecuda-plants.XXXXXX)
bins=$(mktemp -d /tmp/fakecuda-plants-bin.XXXXXX)
cleanup() {
	git -C "$root" worktree remove --force "$wt" 2>/dev/null || rm -rf "$wt"
	rm -rf "$bins"
}
trap cleanup EXIT
git -C "$root" worktree add --detach -q "$wt" HEAD
cp "$root/kernels/fakecuda/plants/plant_cuda_test.go.in" "$wt/engine/plant_cuda_test.go"
cd "$wt"
eval "$(bash .ci/cuda-headers.sh)"

failed=0
# run PKG TESTRE: builds PKG's test binary and runs TESTRE under the fake;
# the output is in $bins/out.
run() {
	local bin=$bins/$(basename "$1").test
	go test -c -o "$bin" "$1"
	local status=0
	(cd "$1" && LD_LIBRARY_PATH=$fake timeout 600 "$bin" -test.run "$2" >"$bins/out" 2>&1) || status=1
	if grep -q "no tests to run" "$bins/out"; then
		echo "FAIL: -test.run '$2' matches no test of $1 (renamed?)"
		failed=1
	fi
	return $status
}

echo "== unplanted: the harness must pass under the fake"
if run ./engine 'TestPlantTrain|TestPlantLoader'; then
	echo "ok   unplanted"
else
	echo "FAIL unplanted: the fake reports a bug in the unmodified code:"
	grep -m5 'fakecuda:' "$bins/out" || tail -20 "$bins/out"
	failed=1
fi

# plant NAME FILE OLD NEW PKG TESTRE EXPECT: replaces OLD with NEW in FILE,
# runs TESTRE of PKG, and wants EXPECT in the output.
plant() {
	local name=$1 file=$2 old=$3 new=$4 pkg=$5 re=$6 expect=$7
	cp "$file" "$bins/orig"
	if ! python3 - "$file" "$old" "$new" <<'EOF'; then
import sys
path, old, new = sys.argv[1:4]
s = open(path).read()
if old not in s:
    sys.exit(1)
open(path, "w").write(s.replace(old, new, 1))
EOF
		echo "FAIL $name: its anchor is no longer in $file"
		failed=1
		return
	fi
	run "$pkg" "$re" || true
	cp "$bins/orig" "$file"
	if grep -qF -- "$expect" "$bins/out"; then
		echo "ok   $name: $(grep -m1 -F -- "$expect" "$bins/out" | cut -c1-240)"
	else
		echo "FAIL $name: no \"$expect\" in the output:"
		tail -20 "$bins/out"
		failed=1
	fi
}

plant "removed event wait (CopyInAsync's cuStreamWaitEvent)" engine/device/cuda.go \
	'return call("cuStreamWaitEvent", d.compute.Wait(ev.ev, 0))' 'return nil' \
	./engine TestPlantTrain 'a cuStreamWaitEvent or a synchronization between them is missing'
plant "removed event wait (the loader's wait for its device buffers)" engine/data/loader.go \
	'if s.releasedOK {' 'if false && s.releasedOK {' \
	./engine TestPlantLoader 'race on allocation'
plant "removed event wait (the loader's wait for its staging copy)" engine/data/loader.go \
	'if s.copiedOK {' 'if false && s.copiedOK {' \
	./engine TestPlantLoader 'fakecuda: write to pinned memory'
# The harness's TestPlantFreeBeforeKernel is this bug itself.
plant "buffer freed before its last kernel" engine/plant_cuda_test.go \
	'd.Free(x)' 'd.Free(x)' \
	./engine TestPlantFreeBeforeKernel 'was freed while kernel relu'
plant "cuMemAlloc inside a capture" engine/device/cuda.go \
	'	if err := d.notCapturing("Alloc"); err != nil {
		return nil, err
	}' '' \
	./engine/device 'TestCUDAConformance//Graphs' 'cuMemAlloc_v2 is not allowed while stream'
plant "kernel argument of the wrong size" engine/device/launch.go \
	'ptrArg(x), intArg(n)}}' 'ptrArg(x), ptrArg(uint64(n))}}' \
	./engine/device 'TestCUDAConformance//ReLU$' 'the parameter buffer holds 24 bytes, but the PTX parameters take 20'
plant "a driver call from a goroutine without the context" engine/device/cuda.go \
	'	d.do(func() error {
		free, _, err := cu.MemInfo()' '	(func(f func() error) error { return f() })(func() error {
		free, _, err := cu.MemInfo()' \
	./engine/device 'TestCUDAOpen' 'no context is current on this thread'

if [ $failed = 0 ]; then echo "PASS: every planted bug failed with its message"; else echo "FAIL"; fi
exit $failed
