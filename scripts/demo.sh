#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# The main job: fetch the pinned base, apply the series, build the test
# kernel, boot it and show flows being offloaded to netdevsim's flow engine:
# the router's ruleset, the rules in "hardware" with their NAT rewrites,
# the counters, and the router's stack no longer seeing the flow; then
# what the core reports: /proc/net/stat/nf_flowtable and the trace events
# with the engine's reasons for refusing flows.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

"$TOP/scripts/prepare.sh"
list=$BUILD/demo-tests.txt
echo "net/netfilter nft_flowtable_hw_offload.sh 900 -v nat encap observe" > "$list"
rc=0
TESTS_FILE=$list LOG_LINES=0 "$TOP/selftests/run.sh" > "$BUILD/demo-ktap.txt" || rc=$?
log=$BUILD/vmrun/logs/net_netfilter_nft_flowtable_hw_offload.sh.log
[ -f "$log" ] && cat "$log"
echo
tail -n 1 "$BUILD/demo-ktap.txt"
[ $rc = 0 ] || { echo "demo failed: see $BUILD/demo-ktap.txt and $BUILD/vmrun/" >&2; exit 1; }
