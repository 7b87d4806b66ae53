#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The debug run, its own command because CI cannot hold it within its time:
# builds a second kernel (build/kout-debug) with kmemleak, lockdep, KASAN
# and reference tracking (selftests/debug.config) and runs the project's
# tests on it with two vCPUs. Any report fails the run.
#   scripts/test-debug.sh [stress [N [SECS:FLOWS[:PPS]]]]
#   TESTS=... TESTS_FILE=... VNG_CPUS=... work as for scripts/test.sh.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$TOP/scripts/deps.sh"
git -C "$KTREE" rev-parse -q --verify base >/dev/null 2>&1 || "$TOP/scripts/mktree.sh"
export KOUT=$BUILD/kout-debug
EXTRA_CONFIG="$TOP/selftests/debug.config" "$TOP/scripts/build.sh"
# The end-to-end test by default, with the time a debug kernel needs
# (tests.txt's timeouts are for the test kernel);
# "stress [N [SECS:FLOWS[:PPS]]]": its stress family N times in a row (3)
# in one boot, and the KUnit suites.
# The debug kernel (two vCPUs on one host thread) cannot carry the test
# kernel's traffic (4000 datagrams a second from each host: 2000 flows
# did not settle in hardware within the test's 520 s); 500 a second
# still gives every flow a datagram each way every 4 s.
if [ "${1:-}" = stress ]; then
	export TESTS_FILE=$BUILD/debug-tests.txt
	runs=$(printf "stress:${3:-60:2000:500} %.0s" $(seq "${2:-3}"))
	echo "net/netfilter nft_flowtable_hw_offload.sh 5400 $runs" > "$TESTS_FILE"
elif [ -n "${1:-}" ]; then
	die "usage: $0 [stress [N [SECS:FLOWS[:PPS]]]]"
elif [ -z "${TESTS:-}" ] && [ -z "${TESTS_FILE:-}" ]; then
	export TESTS_FILE=$BUILD/debug-tests.txt
	echo "net/netfilter nft_flowtable_hw_offload.sh 3600" > "$TESTS_FILE"
fi
export VNG_CPUS=${VNG_CPUS:-2} VNG_MEM=${VNG_MEM:-4G}
exec "$TOP/selftests/run.sh"
