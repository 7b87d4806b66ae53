#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
# Runs inside the test VM (virtme-ng). Arguments: the results folder (shared
# read-write with the host), the kernel tree, the list of tests. Writes one
# line per test to results.txt: "<rc> <seconds> <dir>/<test>"; each test's
# output to logs/; the kernel log to dmesg-boot.txt (before the tests)
# and dmesg.txt (after).
set -u
rw=$1 ktree=$2 list=$3
# The tests need the system's tools (python3 with the packages deps.sh
# installs), not whatever the host user's PATH puts first (pyenv, say).
export PATH=/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH
echo "$(uname -r)" > "$rw/booted"
# Now, before the tests fill the ring buffer: KUnit's KTAP from the boot.
dmesg > "$rw/dmesg-boot.txt"
mkdir -p "$rw/logs"

mountpoint -q /sys/kernel/debug || mount -t debugfs none /sys/kernel/debug
mountpoint -q /sys/kernel/tracing || mount -t tracefs none /sys/kernel/tracing 2>/dev/null

# The tests write next to themselves: run a copy, laid out as in the
# tree, as some find YNL (tools/net/ynl) and its specs there.
kt=/tmp/kt
ksft=$kt/tools/testing/selftests
mkdir -p $ksft
(cd "$ktree/tools/testing/selftests" &&
	tar -cf - kselftest kselftest.h lib.mk net/lib.sh net/lib net/netfilter \
		net/forwarding/lib.sh drivers/net/netdevsim 2>/dev/null) |
	tar -C $ksft -xf -
(cd "$ktree" && tar -cf - tools/net/ynl/pyynl Documentation/netlink) |
	tar -C $kt -xf -

: > "$rw/results.txt"
while read -r dir t tmo args; do
	case "$dir" in ''|'#'*) continue ;; esac
	name=$dir/$t
	log=$rw/logs/$(echo "$name" | tr / _).log
	echo "guest: running $name" > /dev/kmsg
	start=$(date +%s)
	(cd "$ksft/$dir" && timeout -k 10 "${tmo:-600}" "./$t" $args) > "$log" 2>&1 < /dev/null
	rc=$?
	echo "$rc $(( $(date +%s) - start )) $name" >> "$rw/results.txt"
done < "$list"

if [ -w /sys/kernel/debug/kmemleak ]; then
	echo scan > /sys/kernel/debug/kmemleak; sleep 6
	echo scan > /sys/kernel/debug/kmemleak
	cat /sys/kernel/debug/kmemleak > "$rw/kmemleak.txt"
fi
dmesg > "$rw/dmesg.txt"
echo done > "$rw/finished"
