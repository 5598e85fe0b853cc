#!/usr/bin/env bash
# cuda-toolkit.sh: nvcc and ptxas of CUDA 11.8, from Debian bookworm non-free's
# nvidia-cuda-toolkit package, runnable from a cache folder (no root, no
# system install), for `make kernels` and `make kernels-check`.
#
#   eval "$(bash .ci/cuda-toolkit.sh)" && "$NVCC" -ptx … && "$PTXAS" …
#
# stdout: `export NVCC=…` and `export PTXAS=…`; progress and errors go to
# stderr. The tools are cached in
# ${XDG_CACHE_HOME:-$HOME/.cache}/batchlab/cuda-11.8-toolkit, so a second run
# downloads nothing. nvcc needs the CUDA headers, which come from
# cuda-headers.sh (cached beside it).
#
# Debian's nvcc reads its settings from bin/nvcc.profile, which the package
# links to /etc/nvcc.profile with absolute /usr/lib/nvidia-cuda-toolkit
# paths; here it is a file of our own, relative to the cache ($(_HERE_)).
# Only nvcc's PTX path is kept: nvcc, cicc (CUDA C++ to PTX), cudafe++ (its
# front end), ptxas (PTX validation) and libdevice (the math library).
set -euo pipefail

. "$(dirname "$0")/debian-nonfree.sh"

cache=${XDG_CACHE_HOME:-$HOME/.cache}/batchlab/cuda-11.8-toolkit
pkg=nvidia-cuda-toolkit

headers=$(bash "$(dirname "$0")/cuda-headers.sh" | sed -n "s/^export CGO_CFLAGS='-I\(.*\)'$/\1/p")
[ -f "$headers/cuda_runtime.h" ] || die "cuda-headers.sh gave no CUDA headers (got '$headers')"

if [ ! -f "$cache/complete" ]; then
	mkdir -p "$(dirname "$cache")"
	tmp=$(mktemp -d "$(dirname "$cache")/cuda-11.8-toolkit.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	nonfree_download "$tmp" "$pkg" # about 85 MB
	deb=$(ls "$tmp"/"$pkg"_*.deb 2>/dev/null | head -1)
	[ -n "$deb" ] || die "apt-get download left no $pkg .deb in $tmp"
	mkdir -p "$tmp/x"
	dpkg-deb --fsys-tarfile "$deb" | tar -x -C "$tmp/x" ||
		die "could not extract $deb"

	tk=$tmp/x/usr/lib/nvidia-cuda-toolkit
	mkdir -p "$tmp/out/bin"
	for f in "$tk/bin/nvcc" "$tk/bin/cicc" "$tk/bin/crt" "$tmp/x/usr/bin/cudafe++" "$tmp/x/usr/bin/ptxas"; do
		[ -e "$f" ] || die "$pkg has no ${f#"$tmp/x"}"
		mv "$f" "$tmp/out/bin/"
	done
	mv "$tk/libdevice" "$tmp/out/libdevice"

	rm -rf "$cache"
	mv "$tmp/out" "$cache"
	echo "$deb" | sed 's|.*/||' >"$cache/complete"
	echo "cuda-toolkit: cached in $cache" >&2
fi

# Written every run, so that it names the header cache of this run.
cat >"$cache/bin/nvcc.profile" <<EOF
NVVMIR_LIBRARY_DIR = \$(_HERE_)/../libdevice
PATH += \$(_HERE_):
INCLUDES += "-I$headers" \$(_SPACE_)
EOF

echo "export NVCC='$cache/bin/nvcc'"
echo "export PTXAS='$cache/bin/ptxas'"
