#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Build the test kernel from build/linux (or KTREE=...) into build/kout (or
# KOUT=...) with ccache: tinyconfig + selftests/kernel.config + the netfilter
# and netdevsim selftest configs of that tree, modules made built-in.
#   EXTRA_CONFIG="file ..." adds fragments (the debug kernel uses this).
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_cmd make make
need_cmd gcc gcc
need_cmd flex flex
need_cmd bison bison
need_cmd bc bc
need_cmd ccache ccache
need_cmd pahole dwarves
[ -f /usr/include/libelf.h ] || die "libelf.h missing: install the Debian package 'libelf-dev'"
[ -f /usr/include/openssl/ssl.h ] || die "openssl headers missing: install 'libssl-dev'"
is_ktree "$KTREE" || die "$KTREE is not a kernel tree: run scripts/mktree.sh first"

export CCACHE_DIR=${CCACHE_DIR:-$BUILD/ccache}
export CCACHE_MAXSIZE=${CCACHE_MAXSIZE:-5G}
export CCACHE_BASEDIR=$BUILD
mkdir -p "$KOUT" "$CCACHE_DIR"

frags=("$TOP/selftests/kernel.config")
for f in tools/testing/selftests/net/netfilter/config \
	 tools/testing/selftests/drivers/net/netdevsim/config \
	 ${PROJECT_CONFIGS:-}; do
	[ -f "$KTREE/$f" ] || die "$KTREE/$f not found"
	sed 's/=m$/=y/' "$KTREE/$f" > "$KOUT/frag-$(echo "$f" | tr / _)"
	frags+=("$KOUT/frag-$(echo "$f" | tr / _)")
done
for f in ${EXTRA_CONFIG:-}; do frags+=("$f"); done

kmake() { make -C "$KTREE" O="$KOUT" ARCH=x86_64 CC="ccache gcc" "$@"; }

# Fragment lines not in .config ("=n" lines: not set to y).
unmet() {
	local f l
	for f in "${frags[@]}"; do
		while IFS= read -r l; do
			case "$l" in
			CONFIG_*=n) grep -qx "${l%=n}=y" "$KOUT/.config" || continue ;;
			CONFIG_*=*) grep -qx "$l" "$KOUT/.config" && continue ;;
			*) continue ;;
			esac
			echo "$l from $(basename "$f")"
		done < "$f"
	done
}

merge() {
	(cd "$KTREE" && scripts/kconfig/merge_config.sh -m -O "$KOUT" \
		"$KOUT/.config" "${frags[@]}" >/dev/null)
	kmake -s olddefconfig >/dev/null
}

# Start from tinyconfig only when an input changed: a new autoconf.h
# invalidates every ccache entry. Otherwise merge again when the tree's
# Kconfig dropped a symbol the fragments ask for (building an older
# commit, as scripts/check.sh does, removes it from .config); kbuild then
# rebuilds only what depends on it.
sum=$(cat "${frags[@]}" | sha256sum | cut -d' ' -f1)
if [ "$(cat "$KOUT/.frag-sum" 2>/dev/null)" != "$sum" ] || [ ! -f "$KOUT/.config" ]; then
	info "configuring $KOUT"
	kmake -s tinyconfig >/dev/null
	merge
	echo "$sum" > "$KOUT/.frag-sum"
elif [ -n "$(unmet)" ]; then
	merge
fi
unmet | sed 's/^/warning: not set: /' >&2
[ -z "$(unmet)" ] || info "(symbols above were not satisfiable in this tree)"

start=$(date +%s)
info "building in $KOUT (-j${JOBS:-$(nproc)})"
if ! kmake -j"${JOBS:-$(nproc)}" ${W1:+W=1} > "$KOUT/build.log" 2>&1; then
	grep -E 'error|Error' "$KOUT/build.log" | head -n 30 >&2
	die "kernel build failed: see $KOUT/build.log"
fi
info "built $(kmake -s kernelrelease) in $(( $(date +%s) - start ))s; $(ccache -s 2>/dev/null | grep -iE 'hits|hit rate' | head -n1 | tr -s ' ')"
