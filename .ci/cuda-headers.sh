#!/usr/bin/env bash
# cuda-headers.sh: CUDA 11.8 headers and link stubs for compiling the default
# (CUDA) build on a machine without CUDA, taken from Debian bookworm non-free's
# nvidia-cuda-dev package.
#
#   eval "$(bash .ci/cuda-headers.sh)" && go build ./...
#
# stdout: `export CGO_CFLAGS=…` and `export CGO_LDFLAGS=…` lines (also kept in
# $cache/env); progress and errors go to stderr.
#
# The files are cached outside the checkout, in
# ${XDG_CACHE_HOME:-$HOME/.cache}/batchlab/cuda-11.8/{include,stubs}, so CI
# reruns on one machine reuse them; a second run downloads nothing. The
# system's apt sources are never touched: a private sources list and lists
# directory under a temporary folder name only the non-free component.
#
# The stubs (libcuda.so, libcublas.so, …) are for linking only: a binary built
# with them needs the real libcuda.so.1 and libcublas.so.11 to run, and
# gorgonia.org/cu exits at start when there is no GPU.
set -euo pipefail

. "$(dirname "$0")/debian-nonfree.sh"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/batchlab/cuda-11.8
pkg=nvidia-cuda-dev

if [ ! -f "$cache/complete" ]; then
	mkdir -p "$(dirname "$cache")"
	tmp=$(mktemp -d "$(dirname "$cache")/cuda-11.8.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	# about 780 MB, of which only the headers and stubs are kept
	nonfree_download "$tmp" "$pkg"
	deb=$(ls "$tmp"/"$pkg"_*.deb 2>/dev/null | head -1)
	[ -n "$deb" ] || die "apt-get download left no $pkg .deb in $tmp"

	mkdir -p "$tmp/x"
	dpkg-deb --fsys-tarfile "$deb" |
		tar -x -C "$tmp/x" --wildcards './usr/include/*' './usr/lib/x86_64-linux-gnu/stubs/*' ||
		die "could not extract the headers and stubs from $deb"
	rm -f "$deb"

	# cuBLAS has a link stub in this package (stubs/libcublas.so, soname
	# libcublas.so.11); check it and the driver's, so a changed package fails
	# here and not in the linker.
	for f in include/cuda.h include/cublas_v2.h lib/x86_64-linux-gnu/stubs/libcuda.so lib/x86_64-linux-gnu/stubs/libcublas.so; do
		[ -e "$tmp/x/usr/$f" ] || die "$pkg has no usr/$f"
	done

	rm -rf "$cache"
	mkdir -p "$cache"
	mv "$tmp/x/usr/include" "$cache/include"
	mv "$tmp/x/usr/lib/x86_64-linux-gnu/stubs" "$cache/stubs"
	echo "$deb" | sed 's|.*/||' >"$cache/complete"
	echo "cuda-headers: cached in $cache" >&2
fi

cat >"$cache/env" <<EOF
export CGO_CFLAGS='-I$cache/include'
export CGO_LDFLAGS='-L$cache/stubs'
EOF
cat "$cache/env"
