#!/usr/bin/env bash
# check-symbols.sh OUT BINARY...: fails unless every driver (cu*) and cuBLAS
# (cublas*) symbol each BINARY imports is listed in symbols.txt and defined
# by the fake libraries in OUT, so that no default-build binary meets an
# unresolved symbol under the fake.
set -euo pipefail
out=$1
shift
[ $# -gt 0 ] || { echo "check-symbols.sh: name at least one binary" >&2; exit 2; }
here=$(dirname "$0")
defined=$(mktemp)
trap 'rm -f "$defined"' EXIT
for lib in "$out"/libcuda.so.1 "$out"/libcublas.so.*[0-9]; do
	nm -D --defined-only "$lib" | awk '{ print $3 }' | sed 's/@.*//'
done | sort -u >"$defined"
status=0
for bin in "$@"; do
	imported=$(nm -D --undefined-only "$bin" | awk '{ print $2 }' | grep -E '^cu' | sed 's/@.*//' | sort -u)
	missing=$(comm -23 <(echo "$imported") "$defined")
	unlisted=$(comm -23 <(echo "$imported") <(grep -v '^#' "$here/symbols.txt" | sort -u))
	if [ -n "$missing" ]; then
		echo "check-symbols: $bin imports symbols the fake does not define:" $missing >&2
		status=1
	fi
	if [ -n "$unlisted" ]; then
		echo "check-symbols: $bin imports symbols missing from kernels/fakecuda/symbols.txt (add them):" $unlisted >&2
		status=1
	fi
	[ -n "$missing$unlisted" ] || echo "check-symbols: $bin: all $(echo "$imported" | wc -l) driver and cuBLAS imports defined by the fake"
done
exit $status
