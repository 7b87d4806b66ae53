#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Flowtable hardware offload end to end, on netdevsim's flow engine model:
#
#   ns1 --- nsim port --- [ router: ports rp0, rp1 of one nsim device ] --- ns2
#   10.0.1.99                  flowtable f { flags offload; }          10.0.2.99
#   dead:1::99                 masquerade towards ns2                  dead:2::99
#
# For an IPv4 and an IPv6 TCP connection it checks what reached the
# (simulated) hardware: one rule per direction with the NAT rewrite the
# conntrack entry implies; [HW_OFFLOAD] in conntrack; that once offloaded
# the packets no longer reach the router's stack (a netdev ingress counter
# and the forward chain counter stop) while the hardware counters grow by
# the transferred volume; that the data arrives intact; and that the rules
# are gone once the connection closes. Last, it deletes a router port while
# rules are installed: the rule table must end up empty.
#
# The datapath checks need netdevsim (a real device forwards without the
# kernel seeing it, so only its own counters can tell); they read the rules
# through ft_rules() and ft_rule_field() so another device can plug in.
#
# The hosts compute and verify TCP checksums themselves (no checksum
# offload), so data that arrives intact proves the NAT checksum updates.
#
# -v: print the ruleset, the rules in "hardware" and the counters (demo).

source lib.sh

VERBOSE=0
[ "${1:-}" = "-v" ] && VERBOSE=1

checktool "nft --version" "run test without nft"
checktool "socat -h" "run test without socat"
checktool "conntrack --version" "run test without conntrack"
checktool "ethtool --version" "run test without ethtool"
checktool "modprobe -q netdevsim" "load netdevsim"

DEBUGFS=/sys/kernel/debug
[ -d $DEBUGFS/netdevsim ] || mount -t debugfs none $DEBUGFS 2>/dev/null
[ -d $DEBUGFS/netdevsim ] || { echo "SKIP: no debugfs"; exit "$ksft_skip"; }

ID1=$((1024 + RANDOM % 256))
IDR=$((ID1 + 256))
ID2=$((ID1 + 512))
ret=0
tmp=$(mktemp -d)

cleanup() {
	for ns in "$ns1" "$ns2" "$nsr"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
	done
	for id in $ID1 $IDR $ID2; do
		cleanup_netdevsim "$id"
	done
	cleanup_all_ns
	rm -rf "$tmp"
}
trap cleanup EXIT

say() { [ $VERBOSE = 1 ] && echo -e "\n### $*"; true; }
show() { [ $VERBOSE = 1 ] && "$@"; true; }

pass() { echo "PASS: $*"; }
fail() { echo "FAIL: $*"; ret=1; }

setup_ns ns1 ns2 nsr

h1=$(create_netdevsim $ID1 "$ns1")
rp0=$(create_netdevsim $IDR "$nsr")
rp1=$(create_netdevsim_port $IDR "$nsr" 1)
h2=$(create_netdevsim $ID2 "$ns2")
[ -n "$h1" ] && [ -n "$rp0" ] && [ -n "$rp1" ] && [ -n "$h2" ] || {
	echo "SKIP: could not create netdevsim ports"; exit "$ksft_skip"; }

# Join two ports as if by a cable.
nsim_link() {
	local nsa=$1 deva=$2 nsb=$3 devb=$4 fda fdb ia ib

	ia=$(ip netns exec "$nsa" cat /sys/class/net/"$deva"/ifindex)
	ib=$(ip netns exec "$nsb" cat /sys/class/net/"$devb"/ifindex)
	exec {fda}</run/netns/"$nsa"
	exec {fdb}</run/netns/"$nsb"
	echo "$fda:$ia $fdb:$ib" > /sys/bus/netdevsim/link_device
	local rc=$?
	exec {fda}<&- {fdb}<&-
	return $rc
}
nsim_link "$ns1" "$h1" "$nsr" "$rp0" && nsim_link "$nsr" "$rp1" "$ns2" "$h2" || {
	echo "SKIP: netdevsim cannot link ports"; exit "$ksft_skip"; }

# With checksum offload the hosts would trust whatever checksum arrives:
# make them compute and verify it, so that intact data proves the engine's
# checksum updates.
ip netns exec "$ns1" ethtool -K "$h1" tx off >/dev/null &&
ip netns exec "$ns2" ethtool -K "$h2" tx off >/dev/null || {
	echo "FAIL: cannot turn off checksum offload"; exit 1; }

ip -net "$ns1" addr add 10.0.1.99/24 dev "$h1"
ip -net "$ns1" addr add dead:1::99/64 dev "$h1" nodad
ip -net "$ns1" route add default via 10.0.1.1
ip -net "$ns1" route add default via dead:1::1
ip -net "$ns2" addr add 10.0.2.99/24 dev "$h2"
ip -net "$ns2" addr add dead:2::99/64 dev "$h2" nodad
ip -net "$ns2" route add default via 10.0.2.1
ip -net "$ns2" route add default via dead:2::1
ip -net "$nsr" addr add 10.0.1.1/24 dev "$rp0"
ip -net "$nsr" addr add dead:1::1/64 dev "$rp0" nodad
ip -net "$nsr" addr add 10.0.2.1/24 dev "$rp1"
ip -net "$nsr" addr add dead:2::1/64 dev "$rp1" nodad
ip netns exec "$nsr" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$nsr" sysctl -qw net.ipv6.conf.all.forwarding=1

# The flush is a transaction of its own: in one with the new flowtable,
# the old one would still hold the devices.
load_ruleset() {
	ip netns exec "$nsr" nft flush ruleset &&
	ip netns exec "$nsr" nft -f - <<EOF
table inet filter {
	counter routed { }
	flowtable f {
		hook ingress priority 0
		devices = { $rp0, $rp1 }
		flags offload
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		meta l4proto tcp flow add @f
		counter name routed
	}
	chain postrouting {
		type nat hook postrouting priority srcnat; policy accept;
		oifname "$rp1" masquerade
	}
}
table netdev sw {
	counter seen { }
	chain in0 {
		type filter hook ingress device "$rp0" priority -500; policy accept;
		counter name seen
	}
	chain in1 {
		type filter hook ingress device "$rp1" priority -500; policy accept;
		counter name seen
	}
}
EOF
}
load_ruleset || { echo "FAIL: nft cannot load the ruleset"; exit 1; }
say "router ruleset"
show ip netns exec "$nsr" nft list ruleset

# The rules in the flow engine, one line each (see netdevsim flowtable.c).
FT_RULES=$DEBUGFS/netdevsim/netdevsim$IDR/flowtable/rules
ft_rules() {
	cat "$FT_RULES"
}

# Sum of a numeric field ("packets", "bytes") over the rules matching $1.
ft_rule_field() {
	ft_rules | grep -F -- "$1" |
		awk -v f="$2" '{ for (i = 1; i < NF; i++) if ($i == f) s += $(i + 1) }
			       END { print s + 0 }'
}

ft_count() {
	ft_rules | wc -l
}

nft_bytes() {
	ip netns exec "$nsr" nft list counter "$1" "$2" "$3" |
		awk '/bytes/ { for (i = 1; i < NF; i++) if ($i == "bytes") print $(i + 1) }'
}

wait_listen() {
	busywait 5000 sh -c "ip netns exec $ns2 ss -Hltn 'sport = :$1' | grep -q LISTEN"
}

# Run one TCP connection from ns1 to ns2 through the router and check it.
# $1: family tag, $2: server address, $3: address ns2 sees (masquerade),
# $4: printf format of an address:port in the rule dump.
test_tcp() {
	local fam=$1 daddr=$2 snat=$3 fmt=$4
	local lsock=TCP4-LISTEN csock=TCP4:$daddr
	local port=$((20000 + RANDOM % 1000))
	local saddr ct sport nport rule_o rule_r
	local hw0 sw0 fwd0 hw1 sw1 fwd1 size=$((2 * 1024 * 1024))

	[ "$fam" = ipv6 ] && lsock=TCP6-LISTEN csock=TCP6:[$daddr]

	head -c $size /dev/urandom > "$tmp/in"
	rm -f "$tmp/out"
	ip netns exec "$ns2" socat -u "$lsock":$port,reuseaddr \
		OPEN:"$tmp/out",creat,trunc &
	local server=$!
	wait_listen $port

	# The client sends what the test writes to a FIFO: one byte to set
	# the flow up, then, once it is checked, the bulk; closing the FIFO
	# closes the connection.
	rm -f "$tmp/fifo" && mkfifo "$tmp/fifo"
	ip netns exec "$ns1" socat -u OPEN:"$tmp/fifo" "$csock":$port &
	local client=$!
	exec {wfd}>"$tmp/fifo"
	printf x >&$wfd

	slowwait 10 sh -c "ip netns exec $nsr conntrack -L -p tcp --dport $port \
			   2>/dev/null | grep -q HW_OFFLOAD"
	ct=$(ip netns exec "$nsr" conntrack -L -p tcp --dport $port 2>/dev/null |
	     head -n1)
	say "$fam: conntrack entry on the router"
	show echo "$ct"
	sport=$(echo "$ct" | grep -o 'sport=[0-9]*' | head -n1 | cut -d= -f2)
	nport=$(echo "$ct" | grep -o 'dport=[0-9]*' | tail -n1 | cut -d= -f2)
	if [ "$fam" = ipv4 ]; then saddr=10.0.1.99; else saddr=dead:1::99; fi
	if echo "$ct" | grep -q HW_OFFLOAD; then
		pass "$fam: conntrack entry is [HW_OFFLOAD]"
	else
		fail "$fam: conntrack entry is not [HW_OFFLOAD]: $ct"
	fi

	say "$fam: rules in the flow engine"
	show ft_rules
	# What each direction must match and what it must rewrite to.
	# shellcheck disable=SC2059
	local cli srv nat
	cli=$(printf "$fmt" "$saddr" "$sport")
	srv=$(printf "$fmt" "$daddr" "$port")
	nat=$(printf "$fmt" "$snat" "$nport")
	rule_o="in $rp0 tcp $cli > $srv -> out $rp1 $nat > $srv "
	rule_r="in $rp1 tcp $srv > $nat -> out $rp0 $srv > $cli "
	local installed=0
	if [ -n "$sport" ] && ft_rules | grep -qF -- "$rule_o" &&
	   ft_rules | grep -qF -- "$rule_r"; then
		pass "$fam: a rule per direction with the masquerade rewrite"
		installed=1
	else
		fail "$fam: expected rules not in the flow engine:"
		echo "  want: $rule_o"
		echo "  want: $rule_r"
		ft_rules | sed 's/^/  have: /'
	fi

	hw0=$(( $(ft_rule_field "$rule_o" bytes) + $(ft_rule_field "$rule_r" bytes) ))
	sw0=$(nft_bytes netdev sw seen)
	fwd0=$(nft_bytes inet filter routed)
	# In the background: a flow the engine breaks would block the writer.
	cat "$tmp/in" >&$wfd &
	local writer=$!
	slowwait 60 sh -c "[ \$(stat -c %s $tmp/out 2>/dev/null || echo 0) -ge $((size + 1)) ]"
	hw1=$(( $(ft_rule_field "$rule_o" bytes) + $(ft_rule_field "$rule_r" bytes) ))
	sw1=$(nft_bytes netdev sw seen)
	fwd1=$(nft_bytes inet filter routed)
	say "$fam: during the transfer of $size bytes"
	show echo "flow engine: +$((hw1 - hw0)) bytes;" \
		  "router stack ingress: +$((sw1 - sw0)) bytes;" \
		  "forward chain: +$((fwd1 - fwd0)) bytes"

	if [ $((hw1 - hw0)) -ge $size ]; then
		pass "$fam: hardware counters grew by the transferred volume"
	else
		fail "$fam: hardware counters grew by $((hw1 - hw0)) bytes, sent $size"
	fi
	# A few stray packets (ACKs racing the rule install) are fine.
	if [ $((sw1 - sw0)) -lt $((size / 100)) ] && [ $((fwd1 - fwd0)) -lt $((size / 100)) ]; then
		pass "$fam: offloaded packets bypassed the router's stack"
	else
		fail "$fam: router's stack saw $((sw1 - sw0)) bytes" \
		     "(forward chain $((fwd1 - fwd0)))"
	fi

	kill $writer 2>/dev/null
	exec {wfd}>&-
	slowwait 10 sh -c "! kill -0 $client 2>/dev/null" || kill $client
	slowwait 10 sh -c "! kill -0 $server 2>/dev/null"
	if cmp -s "$tmp/in" <(tail -c +2 "$tmp/out") && [ "$(head -c1 "$tmp/out")" = x ]; then
		pass "$fam: data arrived intact"
	else
		fail "$fam: data corrupted or lost" \
		     "($(stat -c %s "$tmp/out" 2>/dev/null) bytes received)"
	fi

	# FIN goes to software, which tears the flow down.
	if [ $installed = 0 ]; then
		fail "$fam: no rules were installed, so none could be removed"
	elif slowwait 15 sh -c "! grep -qF -- '$rule_o' $FT_RULES"; then
		pass "$fam: rules removed after the connection closed"
	else
		fail "$fam: rules still installed after close"
		ft_rules | sed 's/^/  /'
	fi
	kill $server 2>/dev/null
}

test_tcp ipv4 10.0.2.99 10.0.2.1 "%s:%s"
test_tcp ipv6 dead:2::99 dead:2::1 "[%s]:%s"

if slowwait 15 sh -c "[ \$(wc -l < $FT_RULES) -eq 0 ]"; then
	pass "rule table empty after all connections closed"
else
	fail "rule table not empty: $(ft_count) rules"
fi

# An idle TCP connection from ns1 to ns2 that is offloaded (2 rules).
offload_idle_flow() {
	local port=$((21000 + RANDOM % 1000))

	ip netns exec "$ns2" socat -u TCP4-LISTEN:$port,reuseaddr OPEN:/dev/null &
	wait_listen $port
	# All of the client in ns1, so that kill_flows ends it.
	ip netns exec "$ns1" sh -c "{ printf x; sleep 60; } |
				   socat -u STDIN TCP4:10.0.2.99:$port" &
	slowwait 30 sh -c "[ \$(wc -l < $FT_RULES) -eq 2 ]"
}

kill_flows() {
	for ns in "$ns1" "$ns2"; do
		ip netns pids "$ns" | xargs -r kill 2>/dev/null
	done
	ip netns exec "$nsr" conntrack -F 2>/dev/null
	slowwait 15 sh -c "[ \$(wc -l < $FT_RULES) -eq 0 ]"
}

# Rules a port still held when its callback was unbound: the core must
# have destroyed them first, or real hardware would keep forwarding them.
FT_STALE=$DEBUGFS/netdevsim/netdevsim$IDR/flowtable/stale_on_unbind

# $1: what is done; $2: "left" if a rule may outlive the event on a port
# still bound (the model drops the rules of a port that is unbound or
# deleted itself, so that only counts when a device leaves the flowtable);
# rest: the command that unbinds a port.
test_unbind() {
	local what=$1 left=$2 stale0 err
	shift 2

	kill_flows
	load_ruleset || { fail "$what: cannot load the ruleset"; return; }
	if ! offload_idle_flow; then
		fail "$what: flow was not offloaded"
		return
	fi
	stale0=$(cat "$FT_STALE")
	if ! err=$("$@" 2>&1); then
		if echo "$err" | grep -q 'syntax error'; then
			echo "SKIP: $what: this nft cannot do it: $*"
		else
			fail "$what: command failed: $*: $err"
		fi
		return
	fi
	if [ "$(cat "$FT_STALE")" -eq "$stale0" ]; then
		pass "$what: flows destroyed before the unbind"
	else
		fail "$what: $(($(cat "$FT_STALE") - stale0)) rules still installed at unbind"
	fi
	[ "$left" = left ] || return
	if slowwait 15 sh -c "[ \$(wc -l < $FT_RULES) -eq 0 ]"; then
		pass "$what: no rule left on the port still bound"
	else
		fail "$what: $(ft_count) rules left"
	fi
}

nft_router() {
	ip netns exec "$nsr" nft "$@"
}

del_port() {
	echo 1 | ip netns exec "$nsr" \
		tee /sys/bus/netdevsim/devices/netdevsim$IDR/del_port >/dev/null
}

test_unbind "device removed from the flowtable" left \
	nft_router delete flowtable inet filter f "{ devices = { $rp1 } ; }"
test_unbind "flowtable deleted" - \
	nft_router "flush chain inet filter forward; delete flowtable inet filter f"
test_unbind "ruleset flushed" - nft_router flush ruleset
# Last: the port is gone for good.
test_unbind "router port deleted" - del_port

exit $ret
