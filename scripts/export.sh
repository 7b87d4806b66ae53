#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Export base..HEAD of build/linux into patches/ (git format-patch, numbered,
# with the cover letter made from cover-letter.txt), rewrite patches/series and
# refresh the mirror of files the series adds under drivers/ net/ tools/
# Documentation/. Deterministic: exporting an unchanged branch changes nothing.
#   scripts/export.sh          write patches/ and the mirror
#   scripts/export.sh --check  write nothing; fail if they drift from the branch
set -euo pipefail
source "$(dirname "$0")/lib.sh"

check=0
[ "${1:-}" = --check ] && check=1
git -C "$KTREE" rev-parse -q --verify base >/dev/null ||
	die "$KTREE has no 'base' tag: run scripts/mktree.sh first"
[ -d "$KTREE/.git/rebase-apply" ] && die "$KTREE is in the middle of 'git am'"
[ -z "$(git -C "$KTREE" status --porcelain --untracked-files=no)" ] ||
	die "$KTREE has uncommitted changes: commit them first"

MIRROR_DIRS=(drivers net tools Documentation)
out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
mkdir -p "$out/patches" "$out/mirror"

n=$(git -C "$KTREE" rev-list --count base..HEAD)
if [ "$n" -gt 0 ]; then
	git -C "$KTREE" -c user.name="nft offload maintainers" \
		-c user.email=nft-offload@example.invalid \
		-c core.abbrev=12 -c diff.noprefix=false -c format.signature= \
		format-patch -q --zero-commit --numbered --cover-letter \
		--no-signature -o "$out/patches" base..HEAD
	# The cover letter: subject and body from cover-letter.txt, the date of
	# the last patch (format-patch would stamp the current time).
	cl=$out/patches/0000-cover-letter.patch
	last=$(ls "$out/patches" | sort | tail -n1)
	date=$(sed -n 's/^Date: //p' "$out/patches/$last" | head -n1)
	subj=$(head -n1 "$TOP/cover-letter.txt")
	python3 - "$cl" "$TOP/cover-letter.txt" "$date" <<'PY'
import sys
cl, src, date = sys.argv[1:]
text = open(cl).read()
lines = open(src).read().split('\n')
subj, body = lines[0], '\n'.join(lines[1:]).strip('\n')
out = []
for l in text.split('\n'):
    if l.startswith('Date: '):
        l = 'Date: ' + date
    out.append(l)
text = '\n'.join(out).replace('*** SUBJECT HERE ***', subj)
text = text.replace('*** BLURB HERE ***', body)
open(cl, 'w').write(text)
PY
	(cd "$out/patches" && ls *.patch | sort) > "$out/patches/series"
	git -C "$KTREE" diff --name-only --diff-filter=A base HEAD -- "${MIRROR_DIRS[@]}" |
	while read -r f; do
		mkdir -p "$out/mirror/$(dirname "$f")"
		git -C "$KTREE" show "HEAD:$f" > "$out/mirror/$f"
	done
else
	: > "$out/patches/series"
fi

# What the repository holds now, to compare or to replace.
cur=$(mktemp -d)
trap 'rm -rf "$out" "$cur"' EXIT
mkdir -p "$cur/patches" "$cur/mirror"
cp -a "$TOP"/patches/. "$cur/patches/" 2>/dev/null || true
for d in "${MIRROR_DIRS[@]}"; do
	[ -d "$TOP/$d" ] && cp -a "$TOP/$d" "$cur/mirror/"
done

if [ $check = 1 ]; then
	if ! diff -r "$cur/patches" "$out/patches" > "$out.diff" 2>&1 ||
	   ! diff -r "$cur/mirror" "$out/mirror" >> "$out.diff" 2>&1; then
		head -n 40 "$out.diff" >&2; rm -f "$out.diff"
		die "patches/ or the mirror (${MIRROR_DIRS[*]}) drift from $KTREE: run scripts/export.sh"
	fi
	rm -f "$out.diff"
	info "patches/ and the mirror match $KTREE ($n patches)"
	exit 0
fi

rm -rf "$TOP/patches" && mkdir -p "$TOP/patches"
cp -a "$out/patches/." "$TOP/patches/"
for d in "${MIRROR_DIRS[@]}"; do
	rm -rf "${TOP:?}/$d"
	[ -d "$out/mirror/$d" ] && cp -a "$out/mirror/$d" "$TOP/$d"
done
info "exported $n patches to patches/; mirror: $(cd "$out/mirror" && find . -type f | wc -l) files"
