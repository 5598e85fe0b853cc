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

die() {
	echo "cuda-headers: $*" >&2
	exit 1
}

cache=${XDG_CACHE_HOME:-$HOME/.cache}/batchlab/cuda-11.8
pkg=nvidia-cuda-dev

if [ ! -f "$cache/complete" ]; then
	for tool in apt-get dpkg-deb tar; do
		command -v "$tool" >/dev/null || die "$tool not found (this script needs a Debian-like system)"
	done
	keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -r "$keyring" ] || die "$keyring not found (install debian-archive-keyring)"

	# The same Debian mirror the system uses, else deb.debian.org.
	mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

	mkdir -p "$(dirname "$cache")"
	tmp=$(mktemp -d "$(dirname "$cache")/cuda-11.8.tmp.XXXXXX")
	trap 'rm -rf "$tmp"' EXIT
	mkdir -p "$tmp/lists/partial" "$tmp/archives/partial"
	echo "deb [signed-by=$keyring] $mirror bookworm non-free" >"$tmp/sources.list"
	apt=(apt-get -q
		-o "Dir::Etc::SourceList=$tmp/sources.list"
		-o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$tmp/lists"
		-o "Dir::Cache::Archives=$tmp/archives"
		-o APT::Sandbox::User=root)

	echo "cuda-headers: reading the package list of $mirror bookworm non-free" >&2
	# apt-get update exits 0 when a fetch fails, so look for the list itself.
	"${apt[@]}" update >"$tmp/update.log" 2>&1 && ls "$tmp"/lists/*non-free*Packages* >/dev/null 2>&1 ||
		die "apt-get update of $mirror bookworm non-free failed: $(tail -3 "$tmp/update.log")"
	echo "cuda-headers: downloading $pkg (about 780 MB; only its headers and stubs are kept)" >&2
	(cd "$tmp" && "${apt[@]}" download "$pkg" >"$tmp/download.log" 2>&1) ||
		die "apt-get download $pkg failed: $(tail -3 "$tmp/download.log")"
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
