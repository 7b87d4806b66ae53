#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# What a full hardware table costs the control plane, the series against
# the series without the core's backoff patches, in one run: both kernels
# are built from the same tree and boot the same selftest ("bench" family
# of nft_flowtable_hw_offload.sh: a netdevsim table of 16 rules, 8 flows
# in it and 32 waiting, each sending a datagram every 200 ms, for 30 s).
# Prints the driver's add calls, the core's add requests and the offload
# workers' run time, with the ratios upstream/patched.
#   BASE_REF=<rev>   the kernel to compare with (default: the parent of
#                    the series' first backoff patch in KTREE's HEAD)
#   RUNS=N           boots of each kernel (default 1); figures are summed
# Takes two kernel builds (the base one in build/bench) and about 3 minutes
# of VM time per run and kernel.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

subject="netfilter: nf_flow_table_offload: back off from flows the hardware refused"
is_ktree "$KTREE" || die "$KTREE is not a kernel tree: run scripts/mktree.sh first"
git -C "$KTREE" rev-parse -q --verify HEAD >/dev/null ||
	die "$KTREE is not a git tree"
if [ -z "${BASE_REF:-}" ]; then
	first=$(git -C "$KTREE" log --format=%H -F --grep="$subject" -1 HEAD)
	[ -n "$first" ] || die "no commit \"$subject\" in $KTREE: set BASE_REF"
	BASE_REF=$first^
fi
base=$(git -C "$KTREE" rev-parse --verify "$BASE_REF^{commit}") ||
	die "BASE_REF $BASE_REF is not a commit of $KTREE"

wt=$BUILD/bench/linux
test=tools/testing/selftests/net/netfilter/nft_flowtable_hw_offload.sh
mkdir -p "$BUILD/bench"
git -C "$KTREE" worktree prune
if [ -d "$wt" ]; then
	git -C "$wt" checkout -q --force --detach "$base"
else
	git -C "$KTREE" worktree add -q --detach "$wt" "$base"
fi
# One benchmark for both kernels: the patched tree's.
cp "$KTREE/$test" "$wt/$test"

info "building the patched kernel ($(git -C "$KTREE" log --format='%h %s' -1))"
"$TOP/scripts/build.sh" >&2
info "building the base kernel ($(git -C "$wt" log --format='%h %s' -1))"
KTREE=$wt KOUT=$BUILD/bench/kout "$TOP/scripts/build.sh" >&2

list=$BUILD/bench/tests.txt
echo "net/netfilter nft_flowtable_hw_offload.sh 600 bench" > "$list"

# bench_run NAME KTREE KOUT: sum the "# bench:" figures of RUNS boots.
declare -A fig
bench_run() {
	local name=$1 log=$BUILD/bench/$1.log line k v i

	for ((i = 1; i <= ${RUNS:-1}; i++)); do
		info "$name kernel, run $i"
		KTREE=$2 KOUT=$3 TESTS_FILE=$list KUNIT=0 \
			"$TOP/selftests/run.sh" > "$log" 2>&1 || true
		line=$(grep -m1 '# bench:' "$log") ||
			die "$name kernel: no figures (log: $log)"
		for k in calls add_requests works worker_us; do
			v=$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<< "$line")
			[ -n "$v" ] || die "$name kernel: no $k in: $line"
			fig[$name,$k]=$(( ${fig[$name,$k]:-0} + v ))
		done
	done
}
bench_run base "$wt" "$BUILD/bench/kout"
bench_run patched "$KTREE" "$KOUT"

echo "full table, 32 flows waiting for 30 s, ${RUNS:-1} run(s)"
printf "%-30s %12s %12s %8s\n" "" base patched ratio
for k in calls add_requests works worker_us; do
	b=${fig[base,$k]} p=${fig[patched,$k]}
	printf "%-30s %12d %12d %8s\n" "$k" "$b" "$p" \
		"$(awk -v b="$b" -v p="$p" 'BEGIN { if (p) printf "%.1fx", b / p; else print "inf" }')"
done
