#!/usr/bin/env bash
# fake-gpu-test.sh (make fake-gpu-test): the CUDA device's code run in CI, on
# a machine without a GPU, through the fake driver of kernels/fakecuda
# (.build/fake-cuda/libcuda.so.1 and libcublas.so.N, built by make
# fake-cuda). It runs every test of the default (CUDA) build, go test ./...,
# with the fake first on LD_LIBRARY_PATH: the conformance suite on the CUDA
# device, the CUDA device's own tests, graphs, the CPU-vs-GPU training
# comparisons (TestGPUTrainMNIST, at a size the fake finishes, and
# TestCUDATraining), and `batchlab train --device cuda` for every --transfer
# strategy with and without --graph against --device cpu
# (TestTrainCUDAMatchesCPU); tests that name no device run on the fake's
# CUDA device, which is then the default.
#
# It fails if any test fails or skips (a skipped GPU test hides a failure),
# or if the log does not show the GPU checks having run. The log is kept in
# ${OUT:-.build}/fake-gpu-test.log.
set -euo pipefail
cd "$(dirname "$0")/.."

fake=$PWD/.build/fake-cuda
[ -e "$fake/libcuda.so.1" ] || {
	echo "fake-gpu-test: no $fake/libcuda.so.1 (make fake-cuda builds it)" >&2
	exit 1
}
out=${OUT:-.build}
mkdir -p "$out"
log=$out/fake-gpu-test.log

eval "$(bash .ci/cuda-headers.sh)"
export LD_LIBRARY_PATH=$fake${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
# TestGPUTrainMNIST at a size the fake's reference GEMM finishes in a minute
# (a GPU runs the default, 784-512-512-10 for 200 steps of 64); it reads
# the full MNIST where make data put it (data.DefaultDir).
export BATCHLAB_GPU_STEPS=20 BATCHLAB_GPU_BATCH=32 BATCHLAB_GPU_HIDDEN=64

# -p 1: one test binary at a time. Each process on the fake runs kernels on
# a pool of a few hundred host threads; two at once on a small machine
# mostly wait for each other.
echo "fake-gpu-test: go test -v ./... on the fake driver ($fake); log in $log"
status=0
go test -p 1 -count=1 -timeout 60m -v ./... >"$log" 2>&1 || status=$?
grep -E '^(--- |ok |FAIL|panic)' "$log" | grep -v -- '--- PASS' || true

bad=0
if [ $status != 0 ]; then
	echo "fake-gpu-test: go test failed (exit $status); see $log" >&2
	bad=1
fi
if grep -q -- '--- SKIP' "$log"; then
	echo "fake-gpu-test: tests skipped under the fake driver (they must run):" >&2
	grep -A1 -- '--- SKIP' "$log" >&2
	bad=1
fi
for test in TestCUDAConformance TestCUDALarge TestGPUTrainMNIST TestCUDATraining TestTrainCUDAMatchesCPU; do
	if ! grep -q -- "^--- PASS: $test " "$log"; then
		echo "fake-gpu-test: the log shows no '--- PASS: $test'" >&2
		bad=1
	fi
done
grep -h 'GPU vs CPU' "$log" | sed 's/^ */fake-gpu-test: /'
[ $bad = 0 ] && echo "fake-gpu-test: PASS"
exit $bad
