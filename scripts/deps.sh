#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Install what the project needs on a Debian 12 (bookworm) host, as root:
# build tools, QEMU and the guest's userspace tools (the guest runs on the
# host's root file system), and virtme-ng, which bookworm lacks: it comes from
# trixie through a private apt configuration under build/ and is unpacked
# there (pure Python, runs on bookworm's python3). /etc/apt is never touched.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

VNG_SUITE=trixie
PKGS=(
	# kernel build
	make gcc flex bison bc libelf-dev libssl-dev dwarves ccache cpio rsync
	xz-utils git perl python3
	# checks
	sparse codespell python3-ply python3-git coccinelle git-email python3-docutils
	# VM runner (virtme-ng's bookworm dependencies) and its guest init
	qemu-system-x86 busybox-static python3-argcomplete python3-requests kbd
	file kmod udev
	# tools the tests run inside the guest
	iproute2 iputils-ping nftables conntrack socat iperf3 ethtool jq procps
	python3-yaml python3-jsonschema tcpdump
)

missing=()
for p in "${PKGS[@]}"; do
	dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'ok installed' ||
		missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
	[ "$(id -u)" = 0 ] || die "missing packages (${missing[*]}): run this script as root"
	info "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get -q update >/dev/null
	apt-get -q install -y --no-install-recommends "${missing[@]}" >/dev/null ||
		die "apt-get install ${missing[*]} failed"
fi

vroot=$BUILD/tools/virtme-ng
if [ ! -x "$vroot/usr/bin/vng" ]; then
	apt_private "$(debian_mirror) $VNG_SUITE main"
	info "fetching virtme-ng from $VNG_SUITE (private apt config in $APTDIR)"
	apt-get "${APT_OPTS[@]}" -q update >/dev/null ||
		die "apt-get update of the private $VNG_SUITE configuration failed"
	mkdir -p "$BUILD/cache" && rm -rf "$vroot" && mkdir -p "$vroot"
	(cd "$BUILD/cache" && apt-get "${APT_OPTS[@]}" -q \
		-o APT::Sandbox::User=root download virtme-ng >/dev/null) ||
		die "could not download virtme-ng from $VNG_SUITE"
	dpkg-deb -x "$(ls -t "$BUILD"/cache/virtme-ng_*_all.deb | head -n1)" "$vroot"
fi
[ -x "$vroot/usr/bin/vng" ] || die "virtme-ng not found in $vroot"
info "host ready: $(PYTHONPATH=$vroot/usr/lib/python3/dist-packages /usr/bin/python3 "$vroot/usr/bin/vng" --version 2>&1 | head -n1)"
