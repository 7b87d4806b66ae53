#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Benchmarks of the core's offload path. Each compares two kernels built
# from one tree, in one run: the series (KTREE's HEAD) and the series
# without the core patches the benchmark is about (by default: backoff,
# the parent of the first backoff patch; throughput, the patch that adds
# the request trace events it reads, so that with no core change after
# it the two kernels differ only by the benchmark's noise). Both boot
# the same selftest, the series' own
# nft_flowtable_hw_offload.sh (copied into the base worktree), and the
# figures are printed side by side with their ratios.
#
#   scripts/bench.sh backoff      a netdevsim table of 16 rules, 8 flows
#                                 in it and 32 waiting (a datagram every
#                                 200 ms each) for 30 s: driver add calls,
#                                 add requests, offload work items and
#                                 their run time ("bench" family)
#   scripts/bench.sh throughput   10000, then 100000 new UDP flows at once
#                                 (pktgen): flows per second into the
#                                 engine, time to hardware p50/p99, memory
#                                 per offloaded flow, and the kernel CPU
#                                 time of polling their counters for 10 s
#                                 ("rate" family)
#
#   BASE_REF=<rev>   the kernel to compare with
#   RUNS=N           boots of each kernel (default 1); figures are averaged
#   FLOWS=a,b        throughput: the flow counts (default 10000,100000)
# Takes two kernel builds (the base one in build/bench; a minute with a
# warm ccache) and, per run and kernel, about 3 minutes (backoff) or 3.5
# (throughput) of VM time.
set -euo pipefail
source "$(dirname "$0")/lib.sh"

case ${1:-} in
backoff)
	subject="netfilter: nf_flow_table_offload: back off from flows the hardware refused"
	family=bench tag="# bench:" row="" self=0
	# figure:better (lower/higher)
	keys="calls:lower add_requests:lower works:lower worker_us:lower"
	title="full table, 32 flows waiting for 30 s"
	;;
throughput)
	# The base has the request events the benchmark needs: it is the
	# commit that adds them, not its parent.
	subject="netfilter: nf_flow_table_offload: trace offload requests"
	self=1
	family=rate:${FLOWS:-10000,100000} tag="# rate:" row=flows
	keys="insert_per_s:higher p50_us:lower p99_us:lower insert_cpu_ms:lower
	      mem_per_flow_b:lower polls:higher poll_cpu_ms:lower
	      poll_us_each:lower"
	title="new UDP flows at once, then idle in hardware for 10 s"
	# Two vCPUs: pktgen's thread and the router's softirq run on CPU 0,
	# the offload workers can run beside them. On one CPU they take
	# turns, and flows reach the engine as fast as they are generated.
	export VNG_CPUS=${VNG_CPUS:-2}
	;;
*)
	die "usage: $0 backoff|throughput"
	;;
esac

is_ktree "$KTREE" || die "$KTREE is not a kernel tree: run scripts/mktree.sh first"
git -C "$KTREE" rev-parse -q --verify HEAD >/dev/null ||
	die "$KTREE is not a git tree"
if [ -z "${BASE_REF:-}" ]; then
	first=$(git -C "$KTREE" log --format=%H -F --grep="$subject" -1 HEAD)
	[ -n "$first" ] || die "no commit \"$subject\" in $KTREE: set BASE_REF"
	BASE_REF=$first
	[ $self = 1 ] || BASE_REF=$first^
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
echo "net/netfilter nft_flowtable_hw_offload.sh 1800 $family" > "$list"

# bench_run NAME KTREE KOUT: add up the figures of RUNS boots, per row.
declare -A fig
rows=""
bench_run() {
	local name=$1 log line k v r i n

	for ((i = 1; i <= ${RUNS:-1}; i++)); do
		log=$BUILD/bench/$1-$i.log
		info "$name kernel, run $i (log: $log)"
		KTREE=$2 KOUT=$3 TESTS_FILE=$list KUNIT=0 \
			"$TOP/selftests/run.sh" > "$log" 2>&1 || true
		n=0
		while read -r line; do
			r=-
			[ -n "$row" ] && r=$(sed -n "s/.* $row=\([0-9]*\).*/\1/p" <<< "$line")
			[[ " $rows " == *" $r "* ]] || rows="$rows $r"
			for k in $keys; do
				k=${k%%:*}
				if [ "$k" = poll_us_each ]; then
					v=$(awk -v l="$line" 'BEGIN {
						match(l, / poll_cpu_ms=[0-9]+/); c = substr(l, RSTART + 13, RLENGTH - 13)
						match(l, / polls=[0-9]+/); p = substr(l, RSTART + 7, RLENGTH - 7)
						printf "%d", (p > 0) ? c * 1000 / p : 0 }')
				else
					v=$(sed -n "s/.* $k=\([0-9]*\).*/\1/p" <<< "$line")
				fi
				[ -n "$v" ] || die "$name kernel: no $k in: $line"
				fig[$name,$r,$k]=$(( ${fig[$name,$r,$k]:-0} + v ))
			done
			n=$((n + 1))
		done < <(grep -F -- "$tag" "$log" | grep -F '=')
		[ $n -gt 0 ] || die "$name kernel: no figures (log: $log)"
		if grep -q '^not ok' "$log"; then
			info "$name kernel: a check failed (log: $log)"
		fi
	done
}
bench_run base "$wt" "$BUILD/bench/kout"
bench_run patched "$KTREE" "$KOUT"

echo "$title, ${RUNS:-1} run(s), averaged"
echo "base:    $(git -C "$wt" log --format='%h %s' -1)"
echo "patched: $(git -C "$KTREE" log --format='%h %s' -1)"
for r in $rows; do
	[ "$r" = - ] || echo "$row=$r"
	printf "  %-20s %12s %12s %8s\n" "" base patched gain
	for k in $keys; do
		better=${k#*:} k=${k%%:*}
		b=$(( fig[base,$r,$k] / ${RUNS:-1} ))
		p=$(( fig[patched,$r,$k] / ${RUNS:-1} ))
		printf "  %-20s %12d %12d %8s\n" "$k" "$b" "$p" \
			"$(awk -v b="$b" -v p="$p" -v m="$better" 'BEGIN {
				if (m == "higher") { x = b; b = p; p = x }
				if (p) printf "%.2fx", b / p; else print "inf" }')"
	done
done
