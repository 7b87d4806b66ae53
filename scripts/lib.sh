# SPDX-License-Identifier: GPL-2.0
# Shared helpers for the project's scripts. Source it; do not run it.

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD=${BUILD:-$TOP/build}
KTREE=${KTREE:-$BUILD/linux}
KOUT=${KOUT:-$BUILD/kout}

die() { echo "error: $*" >&2; exit 1; }
info() { echo ">>> $*" >&2; }

# need_cmd CMD DEBIAN-PACKAGE: fail with the package to install.
need_cmd() {
	command -v "$1" >/dev/null 2>&1 ||
		die "'$1' not found: install the Debian package '$2' (or run scripts/deps.sh)"
}

# is_ktree DIR: does DIR look like a Linux kernel source tree?
is_ktree() {
	[ -f "$1/Makefile" ] && [ -f "$1/Kconfig" ] &&
		[ -d "$1/net/netfilter" ] && grep -q '^VERSION = ' "$1/Makefile"
}

# Private apt configuration under build/: the system's /etc/apt is never touched.
APTDIR=$BUILD/apt
apt_private() {
	local suite_line
	mkdir -p "$APTDIR/lists/partial" "$APTDIR/cache/archives/partial" "$APTDIR/etc"
	: > "$APTDIR/etc/sources.list"
	for suite_line in "$@"; do
		echo "deb [signed-by=/usr/share/keyrings/debian-archive-keyring.gpg] $suite_line" \
			>> "$APTDIR/etc/sources.list"
	done
	APT_OPTS=(-o "Dir::Etc::SourceList=$APTDIR/etc/sources.list"
		  -o "Dir::Etc::SourceParts=/dev/null"
		  -o "Dir::State::Lists=$APTDIR/lists"
		  -o "Dir::Cache=$APTDIR/cache"
		  -o "Dir::State::Status=/var/lib/dpkg/status"
		  -o "APT::Get::List-Cleanup=false")
}

# The mirror the system already uses (so that we reach the same proxy).
debian_mirror() {
	local m
	m=$(grep -rhE '^(URIs:|deb )' /etc/apt/sources.list \
		/etc/apt/sources.list.d/ 2>/dev/null |
		grep -oE 'https?://[^ ]+/debian/?( |$)' | grep -v security |
		head -n1 | tr -d ' ')
	echo "${m:-http://deb.debian.org/debian}"
}
