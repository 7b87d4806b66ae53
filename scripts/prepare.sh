#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Host packages, the kernel tree with the series, the test kernel: what the
# demo and the tests share. build/linux is made from patches/ when it does not
# exist or already matches patches/; a tree with unexported commits is used as
# it is (with a warning), so a developer can test before exporting.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$TOP/scripts/deps.sh"
if [ -n "${KSRC:-}" ] || ! git -C "$KTREE" rev-parse -q --verify base >/dev/null 2>&1; then
	"$TOP/scripts/mktree.sh"
elif "$TOP/scripts/export.sh" --check >/dev/null 2>&1; then
	info "$KTREE matches patches/"
elif [ -z "$(git -C "$KTREE" status --porcelain --untracked-files=no)" ] &&
     [ "$(git -C "$KTREE" rev-parse HEAD)" = "$(git -C "$KTREE" rev-parse base)" ]; then
	"$TOP/scripts/mktree.sh"
else
	info "WARNING: $KTREE differs from patches/ (unexported work?): testing it as it is."
	info "         Run scripts/export.sh before you commit."
fi
if [ -z "${KSRC:-}" ] && [ "${CI:-}" = true ]; then
	"$TOP/scripts/export.sh" --check
fi
"$TOP/scripts/build.sh"
