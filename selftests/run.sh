#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0
# Boot the built test kernel under virtme-ng (QEMU) and run the tests of
# selftests/tests.txt; then, in a second boot, the KUnit suites built into
# it (a KUnit run taints the kernel, and some selftests skip on a tainted
# one). Prints KTAP and a
# closing "N passed, N failed, N skipped" line; exits non-zero on a failed
# test, a kernel splat in the guest's log, or a boot that never reached the
# tests.
#   TESTS="pattern ..."  run only the tests whose name matches (grep -E)
#   TESTS_FILE=file      another list in the format of selftests/tests.txt
#   VNG_CPUS=2           two vCPUs (single-threaded TCG, see infra notes)
#   VNG_ACCEL=kvm|tcg    default tcg: the nested KVM here does not boot guests
#   KUNIT=0              no KUnit boot (while working on a selftest)
#   LOG_LINES=N          lines of each test's log to print (default 40)
set -uo pipefail
source "$(dirname "$0")/../scripts/lib.sh"

vroot=$BUILD/tools/virtme-ng
[ -x "$vroot/usr/bin/vng" ] || die "virtme-ng missing: run scripts/deps.sh"
need_cmd qemu-system-x86_64 qemu-system-x86
[ -f "$KOUT/arch/x86/boot/bzImage" ] || die "no kernel in $KOUT: run scripts/build.sh"
VNG=(env PATH="$vroot/usr/bin:$PATH" PYTHONPATH="$vroot/usr/lib/python3/dist-packages" /usr/bin/python3 "$vroot/usr/bin/vng")

rw=$BUILD/vmrun
rm -rf "$rw" && mkdir -p "$rw"
list=$rw/tests.txt
grep -vE '^\s*(#|$)' "${TESTS_FILE:-$TOP/selftests/tests.txt}" > "$list.all" || true
if [ -n "${TESTS:-}" ]; then
	grep -E "$(echo "$TESTS" | tr ' ' '|')" "$list.all" > "$list" || true
else
	cp "$list.all" "$list"
fi
total_tmo=180
while read -r _ _ t _; do total_tmo=$((total_tmo + ${t:-600})); done < "$list"

cpus=${VNG_CPUS:-1}
# 9p: bookworm's virtiofsd is too old for virtme-ng. The guest may only
# mount the results folder inside one of its writable overlays (/tmp).
grw=/tmp/vmrun
opts=(--run "$KOUT" --memory "${VNG_MEM:-2G}" --cpus "$cpus" --force-9p
      --rwdir "$grw=$rw" --verbose
      --append "panic=-1 oops=panic")
[ "${VNG_ACCEL:-tcg}" = kvm ] || opts+=(--disable-kvm)
[ "$cpus" -gt 1 ] && opts+=(--qemu-opts="-accel tcg,thread=single")

kunit=0
grep -qE '^CONFIG_[A-Z0-9_]*KUNIT_TEST=y' "$KOUT/.config" && kunit=1
[ "${KUNIT:-1}" = 0 ] && kunit=2

# boot DIR KUNIT_ENABLE LIST TIMEOUT: the results go to $rw/DIR.
boot() {
	local d=$rw/$1
	mkdir -p "$d"
	rm -f "$d/booted" "$d/finished"
	timeout -k 10 "$4" "${VNG[@]}" "${opts[@]}" --append "kunit.enable=$2" \
		-- /bin/bash "$TOP/selftests/guest.sh" "$grw/$1" "$KTREE" "$3" \
		> "$d/console.log" 2>&1 < /dev/null
}

# boot, and once more if the guest never got going.
boot_retry() {
	boot "$@"
	[ -f "$rw/$1/booted" ] && return
	info "the guest never reached the tests; console tail:"
	tail -n 25 "$rw/$1/console.log" >&2
	info "retrying the boot once"
	boot "$@"
}

info "booting $(basename "$(readlink -f "$KOUT")") kernel: $(wc -l < "$list") tests (timeout ${total_tmo}s)"
start=$(date +%s)
boot_retry . 0 "$grw/tests.txt" "$total_tmo"
if [ ! -f "$rw/booted" ]; then
	tail -n 40 "$rw/console.log" >&2
	echo "Bail out! boot failure: the guest never ran the tests (console: $rw/console.log)"
	echo "0 passed, 1 failed"
	exit 1
fi
if [ $kunit = 1 ]; then
	info "booting it again for its KUnit suites"
	: > "$rw/none.txt"
	boot_retry kunit 1 "$grw/none.txt" 900
fi
kd=$rw/kunit

pass=0 fail=0 skip=0 n=0
echo "KTAP version 1"
ntests=$(wc -l < "$list")
echo "1..$((ntests + 2))"
while read -r dir t _; do
	n=$((n + 1))
	name=$dir/$t
	log=$rw/logs/$(echo "$name" | tr / _).log
	res=$(grep -E "^[0-9]+ [0-9]+ $name\$" "$rw/results.txt" 2>/dev/null | tail -n1)
	if [ -z "$res" ]; then
		echo "not ok $n $name # did not run (guest died or timed out)"
		fail=$((fail + 1)); continue
	fi
	read -r rc secs _ <<< "$res"
	[ "${LOG_LINES:-40}" -gt 0 ] && sed 's/^/# /' "$log" 2>/dev/null | tail -n "${LOG_LINES:-40}"
	case $rc in
	0) echo "ok $n $name # ${secs}s"; pass=$((pass + 1)) ;;
	4) why=$(grep -iE 'skip' "$log" | tail -n1 | tr -s ' ' | cut -c1-120)
	   echo "ok $n $name # SKIP ${why:-exit code 4 (ksft_skip), no reason printed}"
	   skip=$((skip + 1)) ;;
	124|137) echo "not ok $n $name # TIMEOUT after ${secs}s"; fail=$((fail + 1)) ;;
	*) echo "not ok $n $name # exit code $rc after ${secs}s"; fail=$((fail + 1)) ;;
	esac
done < "$list"

# KUnit: built-in suites ran at the second boot and logged KTAP to the
# kernel log.
n=$((n + 1))
if [ ! -f "$rw/finished" ]; then
	echo "not ok $n guest-finished # the guest did not finish (console: $rw/console.log)"
	tail -n 40 "$rw/console.log" | sed 's/^/# /'
	fail=$((fail + 1))
elif [ $kunit = 2 ]; then
	echo "ok $n kunit # SKIP KUNIT=0: no KUnit boot"
	skip=$((skip + 1))
elif [ $kunit = 0 ]; then
	echo "ok $n kunit # SKIP no KUnit suite is built into this kernel"
	skip=$((skip + 1))
elif grep -qE '^\[ *[0-9.]+\] +1\.\.[1-9]' "$kd/dmesg-boot.txt" 2>/dev/null; then
	kp=$(python3 "$KTREE/tools/testing/kunit/kunit.py" parse \
		< "$kd/dmesg-boot.txt" 2>&1)
	krc=$?
	echo "$kp" | grep -E '\[(PASSED|FAILED|SKIPPED|CRASHED)\]|Testing complete|ERROR' |
		sed 's/^/# kunit: /'
	summary=$(echo "$kp" | grep -oE 'Ran [0-9]+ tests: passed: [0-9]+(, failed: [0-9]+)?(, skipped: [0-9]+)?' | tail -n1)
	kpass=$(echo "$summary" | sed -n 's/.*passed: \([0-9]*\).*/\1/p')
	kfail=$(echo "$summary" | sed -n 's/.*failed: \([0-9]*\).*/\1/p')
	kskip=$(echo "$summary" | sed -n 's/.*skipped: \([0-9]*\).*/\1/p')
	if [ -z "$summary" ] || [ "$krc" != 0 ] || [ "${kfail:-0}" != 0 ]; then
		echo "not ok $n kunit # ${summary:-kunit.py parse failed}"
		fail=$((fail + 1))
	else
		echo "ok $n kunit # $summary"
		pass=$((pass + ${kpass:-0})); skip=$((skip + ${kskip:-0}))
	fi
else
	echo "not ok $n kunit # KUnit suites are built in, but the boot log has no KTAP ($kd/dmesg-boot.txt)"
	tail -n 20 "$kd/console.log" 2>/dev/null | sed 's/^/# /'
	fail=$((fail + 1))
fi

# Any kernel splat fails the run, whatever the tests said.
n=$((n + 1))
splat_re='WARNING:|BUG:|ref_tracker:|to become free|kernel BUG|Oops|general protection|KASAN|UBSAN|possible circular locking|possible recursive locking|inconsistent lock state|suspicious RCU usage|refcount_t:|unreferenced object|Call Trace:'
splats=$(grep -E "$splat_re" "$rw/dmesg.txt" "$rw/console.log" \
	 "$kd/dmesg.txt" "$kd/console.log" 2>/dev/null | head -n 20)
[ -s "$rw/kmemleak.txt" ] && splats+=$'\n'"$(head -n 20 "$rw/kmemleak.txt")"
if [ -n "${splats//[$'\n ']/}" ]; then
	echo "$splats" | sed 's/^/# /'
	echo "not ok $n kernel-log-clean # splat in the guest's kernel log ($rw/dmesg.txt)"
	fail=$((fail + 1))
else
	echo "ok $n kernel-log-clean"
	pass=$((pass + 1))
fi

info "tests took $(( $(date +%s) - start ))s; logs in $rw"
echo "$pass passed, $fail failed, $skip skipped"
[ "$fail" = 0 ]
