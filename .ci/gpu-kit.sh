#!/usr/bin/env bash
# gpu-kit.sh (make gpu-kit): builds dist/gpu-kit/ and dist/gpu-kit.tar.gz on
# a machine with Go and no GPU, for a GPU machine with no Go, compiler or
# network. The kit holds
#   run.sh OUTDIR     the whole GPU check (.ci/gpu-kit-run.sh; see there)
#   bin/batchlab      the default (CUDA) build for linux/amd64
#   tests/*.test      the CUDA build's test binaries of the packages with GPU
#                     tests: engine/device, engine, bench/transfer (the H2D
#                     benchmarks) and cmd/batchlab (go test -c)
#   tree/             where each test binary runs: the package folders with
#                     go.mod and testdata/mnist-subset at their usual places,
#                     so the tests' relative paths resolve
#   data/mnist/       the full MNIST (the four IDX .gz files)
#   bench/            the PyTorch comparison (compare_pytorch.sh, torch_mlp.py)
#   BUILD.txt         commit, date, Go version
#
# Binaries are compiled against Debian's CUDA 11.8 headers and stubs
# (.ci/cuda-headers.sh): gorgonia.org/cu does not compile against CUDA 13's,
# the driver API is backward compatible, and cuBLAS is loaded at run time, so
# the same binaries run on CUDA 11.8 to 13. They are stripped; the kit is
# about 90 MB, its tarball about 45: the device tool carries at most 64 MiB,
# so a GPU run carries the tarball, and this script fails if that is larger.
set -euo pipefail
cd "$(dirname "$0")/.."

kit=dist/gpu-kit
limit=$((64 * 1024 * 1024))
eval "$(bash .ci/cuda-headers.sh)"
export GOOS=linux GOARCH=amd64 CGO_ENABLED=1
build=(-trimpath -ldflags='-s -w')

rm -rf "$kit" dist/gpu-kit.tar.gz
mkdir -p "$kit"/{bin,tests,bench,data/mnist,tree/testdata}

echo "gpu-kit: MNIST" >&2
go run -tags cpu ./cmd/batchlab data --data "$kit/data/mnist" >&2

echo "gpu-kit: bin/batchlab" >&2
go build -buildvcs=auto "${build[@]}" -o "$kit/bin/batchlab" ./cmd/batchlab # the commit, for --version and run logs
for pkg in engine/device engine bench/transfer cmd/batchlab; do
	echo "gpu-kit: tests/$(basename "$pkg").test" >&2
	go test -c "${build[@]}" -o "$kit/tests/$(basename "$pkg").test" "./$pkg"
	mkdir -p "$kit/tree/$pkg"
done
cp go.mod "$kit/tree/"
cp -r testdata/mnist-subset "$kit/tree/testdata/"
cp bench/compare_pytorch.sh bench/torch_mlp.py "$kit/bench/"
cp .ci/gpu-kit-run.sh "$kit/run.sh"
chmod +x "$kit/run.sh"
{
	echo "commit: $(git rev-parse --short HEAD 2>/dev/null || echo unknown)$(git diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)')"
	echo "built: $(date -u '+%Y-%m-%d %H:%M UTC') with $(go version | cut -d' ' -f3-), CUDA 11.8 headers"
} >"$kit/BUILD.txt"

tar -C dist -czf dist/gpu-kit.tar.gz gpu-kit
size=$(stat -c %s dist/gpu-kit.tar.gz)
if [ "$size" -gt "$limit" ]; then
	echo "gpu-kit: dist/gpu-kit.tar.gz is $((size / 1024 / 1024)) MiB, over the 64 MiB a device run can carry" >&2
	exit 1
fi
echo "gpu-kit: $kit ($(du -sm "$kit" | cut -f1) MiB) and dist/gpu-kit.tar.gz ($((size / 1024 / 1024)) MiB)" >&2
echo "gpu-kit: on a GPU machine: $kit/run.sh OUTDIR, or carry the tarball and unpack it there" >&2
