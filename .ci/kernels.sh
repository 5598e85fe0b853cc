#!/usr/bin/env bash
# kernels.sh: the PTX of kernels/*.cu, made with CUDA 11.8's nvcc (see
# cuda-toolkit.sh) for compute_80; the driver JIT-compiles it for the GPU it
# runs on (sm_80 and later: A100, H100, …).
#
#   bash .ci/kernels.sh          regenerate kernels/*.ptx (make kernels)
#   bash .ci/kernels.sh check    regenerate into a temporary folder and fail on
#                                any difference from the committed PTX, then
#                                validate that PTX with ptxas for sm_80 and
#                                sm_90 (make kernels-check)
#
# The output depends only on the sources and the toolkit: nvcc puts no paths,
# dates or temporary names into PTX without -G or -lineinfo (check verifies
# it by comparing bytes).
set -euo pipefail
cd "$(dirname "$0")/.."

eval "$(bash .ci/cuda-toolkit.sh)"
host_cc=$(command -v gcc) || { echo "kernels: gcc not found (nvcc needs it to preprocess)" >&2; exit 1; }

# gen DIR: compile every kernels/*.cu into DIR/NAME.ptx. gcc 12 is newer
# than CUDA 11.8 supports, hence -allow-unsupported-compiler (only its
# preprocessor matters for device code).
gen() {
	for src in kernels/*.cu; do
		"$NVCC" -ptx -arch=compute_80 -std=c++17 -allow-unsupported-compiler -ccbin "$host_cc" \
			"$src" -o "$1/$(basename "${src%.cu}").ptx"
	done
}

case "${1:-build}" in
build)
	gen kernels
	echo "kernels: wrote" kernels/*.ptx
	;;
check)
	tmp=$(mktemp -d)
	trap 'rm -rf "$tmp"' EXIT
	gen "$tmp"
	status=0
	for ptx in "$tmp"/*.ptx; do
		committed=kernels/$(basename "$ptx")
		if [ ! -f "$committed" ]; then
			echo "kernels: $committed is missing: run make kernels and commit it" >&2
			status=1
		elif ! diff -u "$committed" "$ptx" >&2; then
			echo "kernels: $committed differs from what its source gives: run make kernels and commit it" >&2
			status=1
		fi
	done
	for committed in kernels/*.ptx; do
		if [ ! -f "$tmp/$(basename "$committed")" ]; then
			echo "kernels: $committed has no source in kernels/*.cu: delete it" >&2
			status=1
		fi
		for arch in sm_80 sm_90; do
			"$PTXAS" -arch=$arch "$committed" -o /dev/null || { echo "kernels: ptxas -arch=$arch rejects $committed" >&2; status=1; }
		done
	done
	[ $status = 0 ] && echo "kernels: PTX up to date and valid for sm_80 and sm_90:" kernels/*.ptx
	exit $status
	;;
*)
	echo "usage: $0 [build|check]" >&2
	exit 2
	;;
esac
