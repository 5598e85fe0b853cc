# debian-nonfree.sh, sourced by cuda-headers.sh and cuda-toolkit.sh:
# nonfree_download DIR PKG… downloads the .deb files of packages from Debian
# bookworm's non-free component into DIR, without touching the system's apt
# sources: a private sources list and lists directory in DIR name only that
# component, on the same mirror the system uses (else deb.debian.org).

die() {
	echo "${0##*/}: $*" >&2
	exit 1
}

nonfree_download() {
	local dir=$1
	shift
	for tool in apt-get dpkg-deb tar; do
		command -v "$tool" >/dev/null || die "$tool not found (this script needs a Debian-like system)"
	done
	local keyring=/usr/share/keyrings/debian-archive-keyring.gpg
	[ -r "$keyring" ] || die "$keyring not found (install debian-archive-keyring)"
	local mirror
	mirror=$(awk '/^URIs:/ {print $2; exit}' /etc/apt/sources.list.d/debian.sources 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=$(awk '$1=="deb" {print $2; exit}' /etc/apt/sources.list 2>/dev/null || true)
	[ -n "$mirror" ] || mirror=http://deb.debian.org/debian

	mkdir -p "$dir/lists/partial" "$dir/archives/partial"
	echo "deb [signed-by=$keyring] $mirror bookworm non-free" >"$dir/sources.list"
	local apt=(apt-get -q
		-o "Dir::Etc::SourceList=$dir/sources.list"
		-o Dir::Etc::SourceParts=/dev/null
		-o "Dir::State::Lists=$dir/lists"
		-o "Dir::Cache::Archives=$dir/archives"
		-o APT::Sandbox::User=root)
	echo "${0##*/}: reading the package list of $mirror bookworm non-free" >&2
	# apt-get update exits 0 when a fetch fails, so look for the list itself.
	"${apt[@]}" update >"$dir/update.log" 2>&1 && ls "$dir"/lists/*non-free*Packages* >/dev/null 2>&1 ||
		die "apt-get update of $mirror bookworm non-free failed: $(tail -3 "$dir/update.log")"
	echo "${0##*/}: downloading $*" >&2
	(cd "$dir" && "${apt[@]}" download "$@" >"$dir/download.log" 2>&1) ||
		die "apt-get download $* failed: $(tail -3 "$dir/download.log")"
}
