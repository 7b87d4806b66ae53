#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Make build/linux: a git tree of the base kernel (first commit tagged 'base')
# with patches/series applied by 'git am', in order.
#
#   KSRC=/path/to/net-next scripts/mktree.sh   # any kernel tree instead of the pin
#   PATCHES=/path/to/patches scripts/mktree.sh # another copy of the series
#
# A patch that does not apply stops the run with the patch's file name and the
# failing file/hunk; the tree is left in the middle of 'git am' for inspection.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

need_cmd git git
PATCHES=${PATCHES:-$TOP/patches}
[ -f "$PATCHES/series" ] || die "$PATCHES/series not found"

if [ -n "${KSRC:-}" ]; then
	KSRC=$(cd "$KSRC" 2>/dev/null && pwd) || die "KSRC=$KSRC: no such directory"
	is_ktree "$KSRC" || die "KSRC=$KSRC is not a Linux kernel source tree"
	src=$KSRC
else
	"$TOP/scripts/fetch-base.sh"
	src=$BUILD/base/linux
fi
# A git tree of its own (not a folder inside another repository)?
src_is_git() {
	[ "$(git -C "$src" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$src" && pwd -P)" ]
}
if src_is_git; then
	id="$src $(git -C "$src" rev-parse HEAD)"
else
	id="$src $(sed -n 's/^version=//p' "$TOP/base.lock")"
fi

git_k() { git -C "$KTREE" -c user.name="nft offload maintainers" \
	-c user.email=nft-offload@example.invalid "$@"; }

# Reuse the tree when it was made from the same source; never throw away work.
if [ -d "$KTREE/.git" ] && [ "$(cat "$KTREE/.git/nft-offload-src" 2>/dev/null)" = "$id" ]; then
	if [ -d "$KTREE/.git/rebase-apply" ]; then
		die "$KTREE is in the middle of 'git am': finish it (git am --continue) or run 'git -C $KTREE am --abort' first"
	fi
	if [ -n "$(git_k status --porcelain --untracked-files=no)" ]; then
		die "$KTREE has uncommitted changes: commit and export them (scripts/export.sh) or discard them first"
	fi
	old=$(git_k rev-parse HEAD)
	if [ "$old" != "$(git_k rev-parse base)" ]; then
		git_k tag -f "prev-series" "$old" >/dev/null
		info "previous HEAD kept as tag prev-series ($old)"
	fi
	git_k checkout -q -B series base
else
	if [ -e "$KTREE" ]; then
		[ -n "$(git -C "$KTREE" status --porcelain --untracked-files=no 2>/dev/null)" ] &&
			die "$KTREE has uncommitted changes and another source: move it away first"
		info "removing $KTREE (made from another source)"
		rm -rf "$KTREE"
	fi
	if src_is_git; then
		info "cloning $src (HEAD) into $KTREE"
		git clone -q --shared "$src" "$KTREE"
		git_k checkout -q -B series
	else
		info "making a git tree of $src in $KTREE"
		mkdir -p "$KTREE"
		(cd "$src" && tar -cf - --exclude=.git .) | tar -C "$KTREE" -xf -
		git_k init -q -b series
		git_k config gc.auto 0
		# Debian's .gitignore ignores every top-level path (its
		# packaging block ends in '/*'): drop that block, or no new
		# file of the series could be added.
		if grep -q '^# Debian packaging' "$KTREE/.gitignore" 2>/dev/null; then
			sed -i '/^# Debian packaging/,$d' "$KTREE/.gitignore"
			sed -i '${/^#$/d}' "$KTREE/.gitignore"
		fi
		git_k add -A -f .
		# A fixed date makes the base commit, and so every exported
		# patch, the same on every machine.
		GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" \
			git_k commit -q -m "base: $(sed -n 's/^package=//p' "$TOP/base.lock") $(sed -n 's/^version=//p' "$TOP/base.lock")"
	fi
	git_k tag -f base >/dev/null
	echo "$id" > "$KTREE/.git/nft-offload-src"
fi

n=0
while read -r p; do
	case "$p" in ''|'#'*) continue ;; esac
	f=$PATCHES/$p
	[ -f "$f" ] || die "patches/series names $p, which does not exist"
	grep -q '^Subject:' "$f" || die "$p is not a mail (no Subject:)"
	# The cover letter carries no diff: it is kept in patches/ only.
	case "$p" in *0000-cover-letter.patch) continue ;; esac
	if ! out=$(git_k am -q --3way --committer-date-is-author-date "$f" 2>&1); then
		echo "$out" >&2
		echo >&2
		echo "error: patch $p does not apply to $KTREE." >&2
		echo "$out" | grep -E '^(error: (patch failed|[^ ]+: patch does not apply)|CONFLICT)' | sed 's/^/  /' >&2
		echo "The tree is left in 'git am' for inspection: fix it and 'git -C $KTREE am --continue', or 'git -C $KTREE am --abort'." >&2
		exit 1
	fi
	n=$((n + 1))
done < "$PATCHES/series"
info "$KTREE: base + $n patches ($(git_k rev-parse --short HEAD))"
