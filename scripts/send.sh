#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Cut patches/series into the postings of postings/plan and send them with
# git send-email. Dry run unless --send.
#
#   scripts/send.sh [--send] [--check] [-v N] [NAME ...]   default: every posting
#
# --check runs scripts/check.sh on each posting's patches as they apply on
# their own base (the base plus the postings they need), in
# build/send/linux with build/send/kout: the same relative paths as
# build/linux and build/kout, so ccache serves the builds.
#
# Each posting's patches are applied on the base in build/send/NAME,
# re-authored to the sender (git config user.name/user.email, or
# SENDER="Name <email>") with the sender's Signed-off-by, and formatted with
# the tree in the subject prefix and, for more than one patch, a cover
# letter from the posting's cover file. To: the mailing lists and Cc: the
# people scripts/get_maintainer.pl names. --send refuses the project's
# placeholder identity.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

PLACEHOLDER="nft-offload@example.invalid"
send=0 check=0 ver=1 names=()
while [ $# -gt 0 ]; do
	case "$1" in
	--send) send=1 ;;
	--check) check=1 ;;
	-v) ver=$2; shift ;;
	-*) die "usage: scripts/send.sh [--send] [--check] [-v N] [NAME ...]" ;;
	*) names+=("$1") ;;
	esac
	shift
done

need_cmd git git
dpkg-query -W -f='${Status}' git-email 2>/dev/null | grep -q 'ok installed' ||
	die "git send-email missing: install the Debian package 'git-email'"
is_ktree "$KTREE" || die "$KTREE is not a kernel tree: run scripts/mktree.sh"
plan=$TOP/postings/plan
[ -f "$plan" ] || die "$plan not found"

sender=${SENDER:-"$(git config user.name) <$(git config user.email)>"}
sname=${sender% <*}
semail=${sender##*<}; semail=${semail%>}
[ -n "$sname" ] && [ -n "$semail" ] && [ "$semail" != "$sender" ] ||
	die "no sender identity: set git config user.name/user.email or SENDER"
if [ "$semail" = "$PLACEHOLDER" ] || [[ "$semail" == *.invalid ]]; then
	[ $send = 0 ] || die "refusing to send as the placeholder identity $sender: set SENDER or your git identity"
	info "dry run as the placeholder identity $sender (--send refuses it)"
fi

mapfile -t series < <(grep -v 'cover-letter' "$TOP/patches/series")

# Patch files of a posting's range ("2-3", "4").
range_files() {
	local first=${1%-*} last=${1#*-} i p
	for i in $(seq "$first" "$last"); do
		p=${series[$((i - 1))]:-}
		[ -n "$p" ] || die "$plan: patch $i, the series has ${#series[@]}"
		echo "$TOP/patches/$p"
	done
}

# The patch numbers a posting needs, one per line: those of the postings
# in its "applies after" list (a name, or a patch range that no posting
# sends, such as one already on the list) and, recursively, theirs.
dep_ranges() {
	local d drange dafter i

	for d in ${1//,/ }; do
		if [[ "$d" =~ ^[0-9]+(-[0-9]+)?$ ]]; then
			drange=$d dafter=-
		else
			read -r drange dafter < <(awk -v n="$d" \
				'$1 == n { print $3, $5 }' "$plan")
			[ -n "$drange" ] || die "$plan: $name needs unknown posting $d"
		fi
		[ "$dafter" = - ] || dep_ranges "$dafter"
		for i in $(seq "${drange%-*}" "${drange#*-}"); do echo "$i"; done
	done
}

# One work tree for all postings: switching between them is incremental.
w=$BUILD/send/linux
if ! git -C "$w" rev-parse -q --verify HEAD >/dev/null 2>&1; then
	git -C "$KTREE" worktree prune
	rm -rf "$w" && mkdir -p "$(dirname "$w")"
	git -C "$KTREE" worktree add -q --detach "$w" base
fi

while read -r name tree range cover after; do
	case "$name" in ''|'#'*) continue ;; esac
	if [ ${#names[@]} -gt 0 ] && [[ " ${names[*]} " != *" $name "* ]]; then
		continue
	fi
	[ "$after" != - ] || after=
	mapfile -t files < <(range_files "$range")
	# What the posting is applied on: the base plus the postings it needs,
	# and theirs, in series order.
	deps=()
	mapfile -t deps < <(dep_ranges "$after" | sort -un |
			    while read -r i; do range_files "$i"; done)

	out=$BUILD/send/$name.mails
	rm -rf "$out" && mkdir -p "$out"
	git -C "$w" am --abort >/dev/null 2>&1 || true
	git -C "$w" checkout -q -f --detach base
	for f in "${deps[@]}"; do
		git -C "$w" -c user.name=x -c user.email=x am -q "$f" ||
			die "$name: needed patch $(basename "$f") does not apply"
	done
	start=$(git -C "$w" rev-parse HEAD)
	info "$name: ${#files[@]} patch(es) for $tree on base${after:+ + $after}"
	for f in "${files[@]}"; do
		sed "s/^From: nft offload maintainers <$PLACEHOLDER>$/From: $sname <$semail>/" "$f" |
			GIT_COMMITTER_NAME="$sname" GIT_COMMITTER_EMAIL="$semail" \
			git -C "$w" -c user.name="$sname" -c user.email="$semail" am -q -s ||
			die "$name: $(basename "$f") does not apply on its base"
	done

	if [ $check = 1 ]; then
		info "$name: per-patch checks on its own base"
		KTREE=$w KOUT=$BUILD/send/kout "$TOP/scripts/build.sh" >&2 ||
			die "$name does not build on its own base"
		BASE_REF=$start KTREE=$w KOUT=$BUILD/send/kout \
			KOUT_VENDOR=$BUILD/send/kout-vendor "$TOP/scripts/check.sh" ||
			die "$name: red cells on its own base"
	fi

	# "rfc:TREE": a request for comments (and testing) aimed at TREE.
	prefix="PATCH $tree"
	[[ "$tree" != rfc:* ]] || prefix="RFC PATCH ${tree#rfc:}"
	fp=(-q -o "$out" --subject-prefix="$prefix" --zero-commit "$start"..HEAD)
	[ "$ver" = 1 ] || fp+=(-v "$ver")
	if [ ${#files[@]} -gt 1 ]; then
		[ -f "$TOP/$cover" ] || die "$name: cover letter $cover not found"
		fp+=(--cover-letter)
	fi
	git -C "$w" -c user.name="$sname" -c user.email="$semail" format-patch "${fp[@]}"
	cl=$(ls "$out"/*0000-cover-letter.patch 2>/dev/null || true)
	if [ -n "$cl" ]; then
		# The cover file carries the changelog of later versions.
		python3 - "$cl" "$TOP/$cover" <<'PY'
import sys
cl, src = sys.argv[1:]
lines = open(src).read().split('\n')
subj, body = lines[0], '\n'.join(lines[1:]).strip('\n')
t = open(cl).read().replace('*** SUBJECT HERE ***', subj)
open(cl, 'w').write(t.replace('*** BLURB HERE ***', body))
PY
	fi

	to=() cc=()
	while IFS= read -r line; do
		addr=${line%% (*}
		case "$line" in
		*"list"*) to+=("--to=$addr") ;;
		*) [ "$addr" != "$sname <$semail>" ] && cc+=("--cc=$addr") ;;
		esac
	done < <(cat "$out"/*.patch | (cd "$KTREE" && scripts/get_maintainer.pl \
		--no-git --no-git-fallback --no-remove-duplicates 2>/dev/null) | sort -u)
	[ ${#to[@]} -gt 0 ] || die "$name: get_maintainer.pl names no mailing list"

	echo "=== $name ($tree): $(ls "$out" | wc -l) mail(s)"
	args=(--confirm=never --suppress-cc=self --from="$sname <$semail>" "${to[@]}" "${cc[@]}")
	if [ $send = 1 ]; then
		git -C "$w" send-email "${args[@]}" "$out"/*.patch
	else
		# The headers of each mail, continuation lines included.
		git -C "$w" send-email --dry-run "${args[@]}" "$out"/*.patch 2>&1 |
			awk '/^Dry-OK/ { h = 1; next } h && /^$/ { h = 0; print; next }
			     h && /^(From|To|Cc|Subject):|^[ \t]/ { print }'
	fi
done < "$plan"
