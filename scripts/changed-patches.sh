#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Print the 1-based positions in patches/series of the patches that differ
# from those of REF (default HEAD~1): a patch counts as unchanged when one
# with the same `git patch-id --stable` existed there, whatever its number.
# Prints every position when REF has no series (first commit, shallow clone).
#   scripts/changed-patches.sh [REF]
set -euo pipefail
source "$(dirname "$0")/lib.sh"

ref=${1:-HEAD~1}
mapfile -t series < <(grep -v 'cover-letter' "$TOP/patches/series")
pid() { git patch-id --stable | cut -d' ' -f1; }

old=()
if git -C "$TOP" cat-file -e "$ref:patches/series" 2>/dev/null; then
	while read -r p; do
		old+=("$(git -C "$TOP" show "$ref:patches/$p" | pid)")
	done < <(git -C "$TOP" show "$ref:patches/series" | grep -v 'cover-letter')
fi

for i in "${!series[@]}"; do
	id=$(pid < "$TOP/patches/${series[$i]}")
	if [ ${#old[@]} -eq 0 ] || [[ " ${old[*]} " != *" $id "* ]]; then
		echo $((i + 1))
	fi
done
