#!/usr/bin/env bash
# gpu-test.sh (make gpu-test): the whole GPU verification, on a machine with
# an NVIDIA GPU, CUDA and Go (or carried there by ../shared/tools/device-bundle:
# `bash .device/run.sh make gpu-test`). It runs
#   1. the conformance suite on the CUDA device against the CPU reference, on
#      awkward sizes, and the CUDA device's own tests (go test ./engine/device);
#   2. 200 MNIST training steps on the CPU, the GPU and the GPU with CUDA
#      graphs from the same seed, comparing the loss curves (TestGPUTrainMNIST;
#      it needs the full MNIST: make data, or copy ~/.cache/batchlab/mnist to
#      .device/mnist before carrying the tree over);
#   3. the benchmarks under bench/ (go test -run '^$' -bench . ./bench/...);
#   4. compute-sanitizer memcheck and racecheck over the conformance suite,
#      where compute-sanitizer is installed.
# Everything goes to the screen and to ${OUT:-gpu-results}/gpu-test.log, which
# ends with a summary of what passed and failed. The exit status is 1 if
# anything failed.
set -uo pipefail
cd "$(dirname "$0")/.."

out=${OUT:-gpu-results}
mkdir -p "$out"
log=$out/gpu-test.log
exec > >(tee "$log") 2>&1

passed=() failed=() skipped=()
step() {
	local name=$1
	shift
	echo
	echo "== $name"
	echo "\$ $*"
	local start=$SECONDS
	if "$@"; then
		echo "-- PASS: $name ($((SECONDS - start))s)"
		passed+=("$name")
	else
		echo "-- FAIL: $name ($((SECONDS - start))s)"
		failed+=("$name")
	fi
}

echo "batchlab GPU verification, $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo 'unknown (not a git checkout)')"
echo "go: $(go version)"
if ! nvidia-smi; then
	echo "no GPU: nvidia-smi failed. make gpu-test needs an NVIDIA GPU." >&2
	exit 1
fi
nvidia-smi --query-gpu=name,compute_cap,driver_version,memory.total --format=csv 2>/dev/null
echo "CGO_CFLAGS=${CGO_CFLAGS:-} CGO_LDFLAGS=${CGO_LDFLAGS:-}"
if [ -z "${BATCHLAB_DATA:-}" ] && [ -d .device/mnist ]; then
	export BATCHLAB_DATA=$PWD/.device/mnist
fi
echo "MNIST: ${BATCHLAB_DATA:-default location (see batchlab data)}"

step "CUDA device: conformance suite and device tests" go test -count=1 -v ./engine/device/
step "MNIST, 200 steps: CPU vs GPU vs GPU with graphs" go test -count=1 -v -run 'TestGPUTrainMNIST' ./engine/
if [ -d bench ]; then
	step "benchmarks (bench/)" go test -run '^$' -bench . -timeout 30m ./bench/...
else
	skipped+=("benchmarks: no bench/ folder")
fi

sanitizer=$(command -v compute-sanitizer || ls "${CUDA_HOME:-/usr/local/cuda}"/bin/compute-sanitizer 2>/dev/null || true)
if [ -n "$sanitizer" ]; then
	bin=$(mktemp -d)/device.test
	if go test -c -o "$bin" ./engine/device/; then
		for tool in memcheck racecheck; do
			step "compute-sanitizer $tool: conformance suite" \
				"$sanitizer" --tool "$tool" --error-exitcode 1 "$bin" -test.run 'TestCUDAConformance' -test.count 1
		done
	else
		failed+=("compiling the device tests for compute-sanitizer")
	fi
else
	skipped+=("compute-sanitizer: not installed")
fi

echo
echo "== summary"
for s in "${passed[@]}"; do echo "PASS  $s"; done
for s in "${failed[@]}"; do echo "FAIL  $s"; done
for s in "${skipped[@]}"; do echo "SKIP  $s"; done
echo "${#passed[@]} passed, ${#failed[@]} failed"
echo "log: $log"
[ ${#failed[@]} = 0 ]
