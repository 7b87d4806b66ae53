#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Fetch the pinned base kernel (base.lock) with a private apt configuration,
# verify its sha256 and unpack it into build/base/linux. Cached: a second run
# fetches nothing. A corrupted download is removed and fetched again.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

lock=$TOP/base.lock
pkg=$(sed -n 's/^package=//p' "$lock")
ver=$(sed -n 's/^version=//p' "$lock")
suite=$(sed -n 's/^suite=//p' "$lock")
sum=$(sed -n 's/^sha256=//p' "$lock")
[ -n "$pkg" ] && [ -n "$ver" ] && [ -n "$sum" ] || die "$lock is incomplete"

need_cmd apt-get apt
need_cmd dpkg-deb dpkg
need_cmd sha256sum coreutils
need_cmd xz xz-utils

cache=$BUILD/cache
deb=$cache/${pkg}_${ver//:/%3a}_all.deb
src=$BUILD/base/linux
stamp=$BUILD/base/.unpacked-$ver
mkdir -p "$cache"

verify() { echo "$sum  $1" | sha256sum -c --status; }

if [ -f "$stamp" ] && is_ktree "$src"; then
	info "base $pkg $ver already unpacked in $src"
	exit 0
fi

if [ -f "$deb" ] && ! verify "$deb"; then
	info "cached $deb fails its sha256: fetching it again"
	rm -f "$deb"
fi
if [ ! -f "$deb" ]; then
	apt_private "$(debian_mirror) $suite main"
	info "fetching $pkg=$ver from $suite (private apt config in $APTDIR)"
	apt-get "${APT_OPTS[@]}" -q update >/dev/null ||
		die "apt-get update of the private $suite configuration failed"
	(cd "$cache" && apt-get "${APT_OPTS[@]}" -q \
		-o APT::Sandbox::User=root download "$pkg=$ver") ||
		die "could not download $pkg=$ver from $suite"
	verify "$deb" || { rm -f "$deb"; die "$pkg $ver: sha256 mismatch (expected $sum)"; }
fi

info "unpacking $deb"
rm -rf "$BUILD/base" && mkdir -p "$BUILD/base/deb"
dpkg-deb -x "$deb" "$BUILD/base/deb"
tarball=$(ls "$BUILD"/base/deb/usr/src/linux-source-*.tar.xz 2>/dev/null | head -n1)
[ -n "$tarball" ] || die "$deb contains no /usr/src/linux-source-*.tar.xz"
mkdir "$BUILD/base/x"
tar -C "$BUILD/base/x" -xJf "$tarball"
rm -rf "$BUILD/base/deb"
mv "$BUILD/base/x/"* "$src"
rmdir "$BUILD/base/x"
is_ktree "$src" || die "$src is not a kernel tree after unpacking"
touch "$stamp"
info "base kernel: $src ($(make -s -C "$src" kernelversion 2>/dev/null))"
