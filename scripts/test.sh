#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The test command: prepare (packages, tree, kernel) and run selftests/run.sh
# in the VM. Prints KTAP and closes with "N passed, N failed, N skipped".
#   TESTS="nft_flowtable" scripts/test.sh   run only matching tests
#   KSRC=/path/to/nf-next scripts/test.sh   test another kernel tree
set -euo pipefail
source "$(dirname "$0")/lib.sh"

start=$(date +%s)
if ! "$TOP/scripts/prepare.sh"; then
	echo "Bail out! could not prepare the test kernel"
	echo "0 passed, 1 failed"
	exit 1
fi
info "prepared in $(( $(date +%s) - start ))s"
exec "$TOP/selftests/run.sh"
