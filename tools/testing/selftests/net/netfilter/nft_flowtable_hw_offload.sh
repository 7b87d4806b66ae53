#!/bin/bash
# SPDX-License-Identifier: GPL-2.0
#
# Flowtable hardware offload end to end, on netdevsim's flow engine model:
#
#   ns1 --- nsim port --- [ router: ports rp0, rp1 of one nsim device ] --- ns2
#   10.0.1.99                  flowtable f { flags offload; }          10.0.2.99
#   dead:1::99                                                         dead:2::99
#
# Each case checks what reached the (simulated) hardware: one rule per
# direction whose match and rewrite follow from the addresses the case set
# up; [HW_OFFLOAD] in conntrack; that once offloaded the packets no longer
# reach the router's stack (a netdev ingress counter and the forward chain
# counter stop) while the hardware counters grow by the transferred volume;
# that the data arrives intact; and that the rules are gone when they must
# be. Case families, all run by default:
#
#   nat        IPv4 and IPv6, TCP and UDP, without NAT, with masquerade
#              and with a port forward (DNAT)
#   encap      the router's interfaces are VLAN, QinQ and bridge uppers of
#              the flowtable's ports
#   teardown   TCP RST; a UDP flow kept alive by hardware traffic alone
#              (the core polls the hardware counters), then expiring idle
#   fallback   the engine refuses every flow: traffic stays in software
#   scale      1000 concurrent UDP flows offloaded and torn down
#   observe    what the core reports: the exact counters of
#              /proc/net/stat/nf_flowtable and the nf_flowtable trace
#              events (with the driver's reason) for flows accepted,
#              refused (injected fault, full table, a port of another
#              device as egress) and polled, and the driver's reason for
#              refusing to bind, as a netlink client (YNL) receives it
#   capacity   a full table and a refusing engine under steady traffic:
#              the core stops asking (backoff), the flows keep forwarding
#              in software, room made in the table is taken; a flow the
#              engine holds already is counted as installed (-EEXIST)
#   stress     traffic on 2000 flows for 60 s
#              (stress:SECONDS[:FLOWS[:PPS]]; PPS: datagrams a second from
#              each host, 4000; a debug kernel needs fewer): the engine
#              fails 5% of its commands, 20% of its binds, and the
#              configuration churns: ports down and up, a port deleted and
#              re-created, the flowtable re-added, the ruleset and conntrack
#              flushed, the router's device re-created; then the rules match
#              the flows the core holds in hardware and none outlives a
#              conntrack flush; before that, a failed delete is retried
#   unbind     device removed, flowtable deleted, ruleset flushed, router
#              port deleted, router netns deleted: no rule outlives them
#              (last: it deletes the router)
#
# Not run by default, for benchmarks that compare kernels: "bench" prints
# what a full table costs the control plane (driver calls, offload worker
# time) and checks only that the table filled up; "rate[:N,...]" offers
# N (default 10000, then 100000) new UDP flows at once (pktgen) and
# prints how fast they reach the engine, each flow's time to hardware
# (p50, p99), the kernel CPU time until all are in hardware, the memory
# per offloaded flow and the kernel CPU time the polls of their counters
# take while they idle in hardware.
#
# The datapath checks need netdevsim (a real device forwards without the
# kernel seeing it, so only its own counters can tell); they read the rules
# through ft_rules() and ft_rule_field() so another device can plug in.
#
# The hosts compute and verify checksums themselves (no checksum offload),
# so data that arrives intact proves the NAT checksum updates.
#
# Usage: nft_flowtable_hw_offload.sh [-v] [family...]
# -v: print the ruleset, the rules in "hardware" and the counters (demo).

source lib.sh
source "$net_netfilter_dir/../../kselftest/ktap_helpers.sh"

VERBOSE=0
[ "${1:-}" = "-v" ] && { VERBOSE=1; shift; }
FAMILIES=${*:-nat encap teardown fallback scale observe capacity stress unbind}

checktool "nft --version" "run test without nft"
checktool "socat -h" "run test without socat"
checktool "conntrack --version" "run test without conntrack"
checktool "ethtool --version" "run test without ethtool"
checktool "ping -V" "run test without ping"
checktool "python3 --version" "run test without python3"
checktool "modprobe -q netdevsim" "load netdevsim"

DEBUGFS=/sys/kernel/debug
[ -d $DEBUGFS/netdevsim ] || mount -t debugfs none $DEBUGFS 2>/dev/null
[ -d $DEBUGFS/netdevsim ] || { ktap_skip_all "no debugfs"; exit "$ksft_skip"; }

ID1=$((1024 + RANDOM % 256))
IDR=$((ID1 + 256))
ID2=$((ID1 + 512))
IDX=$((ID1 + 768))
ID3=$((ID1 + 1024))
TRACE_INST=""
tmp=$(mktemp -d)

cleanup() {
	for ns in "$ns1" "$ns2" "$nsr"; do
		ip netns pids "$ns" 2>/dev/null | xargs -r kill 2>/dev/null
	done
	for id in $ID1 $IDR $ID2 $IDX $ID3; do
		cleanup_netdevsim "$id"
	done
	cleanup_all_ns
	[ -z "$TRACE_INST" ] || rmdir "$TRACE_INST"
	rm -rf "$tmp"
}
trap cleanup EXIT

say() { [ $VERBOSE = 1 ] && echo -e "\n### $*"; true; }
show() { [ $VERBOSE = 1 ] && "$@" | sed 's/^/# /'; true; }

pass() { ktap_test_pass "$*"; }
fail() { ktap_test_fail "$*"; }
# check DESCRIPTION COMMAND...: one KTAP result from the command's status
# (ktap_test_result would split a quoted argument of the command).
check() {
	local what=$1

	shift
	if "$@"; then pass "$what"; else fail "$what"; fi
}

ktap_print_header

setup_ns ns1 ns2 nsr

h1=$(create_netdevsim $ID1 "$ns1")
rp0=$(create_netdevsim $IDR "$nsr")
rp1=$(create_netdevsim_port $IDR "$nsr" 1)
h2=$(create_netdevsim $ID2 "$ns2")
[ -n "$h1" ] && [ -n "$rp0" ] && [ -n "$rp1" ] && [ -n "$h2" ] || {
	ktap_skip_all "could not create netdevsim ports"; exit "$ksft_skip"; }

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
	ktap_skip_all "netdevsim cannot link ports"; exit "$ksft_skip"; }

# With checksum offload the hosts would trust whatever checksum arrives:
# make them compute and verify it, so that intact data proves the engine's
# checksum updates.
ip netns exec "$ns1" ethtool -K "$h1" tx off >/dev/null &&
ip netns exec "$ns2" ethtool -K "$h2" tx off >/dev/null || {
	ktap_exit_fail_msg "cannot turn off checksum offload"; }

ip netns exec "$nsr" sysctl -qw net.ipv4.ip_forward=1
ip netns exec "$nsr" sysctl -qw net.ipv6.conf.all.forwarding=1

# The layer 3 devices of the last topo(): host 1, router side 1, router
# side 2, host 2; and the VLAN tags each side carries, outermost first.
L1=$h1 R0=$rp0 R1=$rp1 L2=$h2
TAGS0="" TAGS1=""

# topo plain|vlan|qinq|bridge: put the addresses on plain ports, on VLAN
# uppers of them (tag 10 on side 1, 20 on side 2), on 802.1Q-in-802.1Q
# uppers on side 1 (outer 100, inner 10), or on a bridge over rp0.
topo() {
	local dev

	for dev in h1v h1q; do ip -net "$ns1" link del $dev 2>/dev/null; done
	for dev in r0v r0q r1v br0; do ip -net "$nsr" link del $dev 2>/dev/null; done
	ip -net "$ns2" link del h2v 2>/dev/null
	# Link-local addresses stay: IPv6 neighbour discovery needs them.
	ip -net "$ns1" addr flush dev "$h1" scope global
	ip -net "$nsr" addr flush dev "$rp0" scope global
	ip -net "$nsr" addr flush dev "$rp1" scope global
	ip -net "$ns2" addr flush dev "$h2" scope global
	for dev in "$ns1" "$nsr" "$ns2"; do ip -net "$dev" neigh flush all; done
	L1=$h1 R0=$rp0 R1=$rp1 L2=$h2 TAGS0="" TAGS1=""

	case $1 in
	vlan)
		ip -net "$ns1" link add link "$h1" name h1v type vlan id 10
		ip -net "$nsr" link add link "$rp0" name r0v type vlan id 10
		ip -net "$nsr" link add link "$rp1" name r1v type vlan id 20
		ip -net "$ns2" link add link "$h2" name h2v type vlan id 20
		L1=h1v R0=r0v R1=r1v L2=h2v TAGS0="10" TAGS1="20"
		;;
	qinq)
		ip -net "$ns1" link add link "$h1" name h1v type vlan id 100
		ip -net "$ns1" link add link h1v name h1q type vlan id 10
		ip -net "$nsr" link add link "$rp0" name r0v type vlan id 100
		ip -net "$nsr" link add link r0v name r0q type vlan id 10
		ip -net "$ns1" link set h1v up
		ip -net "$nsr" link set r0v up
		# __dev_forward_skb() lets a frame carry one tag beyond the
		# MTU, not two.
		ip -net "$ns1" link set h1q mtu 1496
		ip -net "$nsr" link set r0q mtu 1496
		L1=h1q R0=r0q TAGS0="100 10"
		;;
	bridge)
		ip -net "$nsr" link add br0 type bridge
		ip -net "$nsr" link set "$rp0" master br0
		R0=br0
		;;
	esac
	ip -net "$ns1" link set "$L1" up
	ip -net "$ns2" link set "$L2" up
	ip -net "$nsr" link set "$R0" up
	ip -net "$nsr" link set "$R1" up

	ip -net "$ns1" addr add 10.0.1.99/24 dev "$L1"
	ip -net "$ns1" addr add dead:1::99/64 dev "$L1" nodad
	ip -net "$ns1" route replace default via 10.0.1.1 dev "$L1"
	ip -net "$ns1" route replace default via dead:1::1 dev "$L1"
	ip -net "$ns2" addr add 10.0.2.99/24 dev "$L2"
	ip -net "$ns2" addr add dead:2::99/64 dev "$L2" nodad
	ip -net "$ns2" route replace default via 10.0.2.1 dev "$L2"
	ip -net "$ns2" route replace default via dead:2::1 dev "$L2"
	ip -net "$nsr" addr add 10.0.1.1/24 dev "$R0"
	ip -net "$nsr" addr add dead:1::1/64 dev "$R0" nodad
	ip -net "$nsr" addr add 10.0.2.1/24 dev "$R1"
	ip -net "$nsr" addr add dead:2::1/64 dev "$R1" nodad

	# Resolve the neighbours before a case counts on the path.
	local a ok=1
	for a in 10.0.2.99 dead:2::99; do
		slowwait 10 ip netns exec "$ns1" ping -c1 -W1 $a >/dev/null && continue
		ok=0
		ip netns exec "$ns1" ping -c1 -W1 $a | sed 's/^/# /'
		ip -net "$ns1" route get $a | sed 's/^/# /'
		ip -net "$nsr" neigh | sed 's/^/# /'
	done
	check "topology $1: host 1 reaches host 2" [ $ok = 1 ]
}

# Ports of the port forward: clients connect to the router's side 1
# address on VPORT and reach the server on host 2 at FWD_PORT.
VPORT=8080
FWD_PORT=5201

# load_ruleset none|snat|dnat: the flowtable always holds the two ports;
# the NAT the case needs is added. The flush is a transaction of its own:
# in one with the new flowtable, the old one would still hold the devices.
load_ruleset() {
	local nat

	case ${1:-snat} in
	snat)	nat="chain postrouting {
			type nat hook postrouting priority srcnat; policy accept;
			oifname \"$R1\" masquerade
		}" ;;
	dnat)	nat="chain prerouting {
			type nat hook prerouting priority dstnat; policy accept;
			ip daddr 10.0.1.1 tcp dport $VPORT dnat ip to 10.0.2.99:$FWD_PORT
			ip daddr 10.0.1.1 udp dport $VPORT dnat ip to 10.0.2.99:$FWD_PORT
			ip6 daddr dead:1::1 tcp dport $VPORT dnat ip6 to [dead:2::99]:$FWD_PORT
			ip6 daddr dead:1::1 udp dport $VPORT dnat ip6 to [dead:2::99]:$FWD_PORT
		}" ;;
	*)	nat="" ;;
	esac

	ip netns exec "$nsr" nft flush ruleset &&
	ip netns exec "$nsr" nft -f - <<EOF
table inet filter {
	counter routed { }
	flowtable f {
		hook ingress priority 0
		devices = { $rp0, $rp1${FT_EXTRA_DEV:+, $FT_EXTRA_DEV} }
		flags offload
	}
	chain forward {
		type filter hook forward priority filter; policy accept;
		meta l4proto { tcp, udp } flow add @f
		counter name routed
	}
	$nat
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

# The rules in the flow engine, one line each (see netdevsim flowtable.c):
# "in PORT PROTO [vlan ID]... SRC > DST -> out PORT [pop-vlan]...
#  [push-vlan ID]... SRC > DST dst MAC src MAC packets N bytes N age_ms N".
FT_DIR=$DEBUGFS/netdevsim/netdevsim$IDR/flowtable
FT_RULES=$FT_DIR/rules
ft_rules() {
	cat "$FT_RULES"
}

# Sum of a numeric field ("packets", "bytes", "age_ms") over the rules
# matching $1.
ft_rule_field() {
	ft_rules | grep -F -- "$1" |
		awk -v f="$2" '{ for (i = 1; i < NF; i++) if ($i == f) s += $(i + 1) }
			       END { print s + 0 }'
}

ft_count() {
	ft_rules | wc -l
}

# Wait up to $1 seconds for the rule table to hold $2 rules.
ft_wait_count() {
	slowwait "$1" sh -c "[ \$(wc -l < $FT_RULES) -eq $2 ]"
}

# Wait up to $1 seconds until none of the other arguments is a rule.
ft_wait_gone() {
	local secs=$1 r cmd=""

	shift
	for r in "$@"; do cmd="$cmd ! grep -qF -- '$r' $FT_RULES &&"; done
	slowwait "$secs" sh -c "$cmd true"
}

# Set a knob of the router's netdevsim flow engine ($1: fail_bind,
# fail_add, fail_del, fail_stats or no_fwd) to $2.
ft_fault() {
	echo "$2" > "$FT_DIR/$1"
}

# Whether conntrack entry $2 carries status $1 (OFFLOAD, HW_OFFLOAD).
ct_is() {
	grep -q "\[$1\]" <<< "$2"
}

# Whether entry $1 is offloaded in software only.
ct_sw() {
	ct_is OFFLOAD "$1" && ! ct_is HW_OFFLOAD "$1"
}

nft_bytes() {
	ip netns exec "$nsr" nft list counter "$1" "$2" "$3" |
		awk '/bytes/ { for (i = 1; i < NF; i++) if ($i == "bytes") print $(i + 1) }'
}

# Traffic generators the hosts run: for UDP an echo server, a client that
# sends what it is told on stdin ("N": N datagrams, each after the echo of
# the last; "t S": one every 10 ms for S seconds) and prints how many
# echoes came back, and "many", N flows of one datagram each way that stay
# open until stdin closes; "steady", N flows that send a datagram each
# every 200 ms and print their local ports, with "open N" N more (whose
# ports they print), with "close PORT" one less, and once stdin closes
# print how many datagrams they sent and got back;
# "rst", a TCP client that sends one byte and aborts the connection when
# stdin closes.
cat > "$tmp/flows.py" <<'EOF'
import os, resource, select, socket, struct, sys, time

mode, fam = sys.argv[1], sys.argv[2]
af = socket.AF_INET6 if fam == "ipv6" else socket.AF_INET
if mode == "server":
    s = socket.socket(af, socket.SOCK_DGRAM)
    s.bind(("", int(sys.argv[3])))
    while True:
        d, a = s.recvfrom(65535)
        s.sendto(d, a)
addr, port, arg = sys.argv[3], int(sys.argv[4]), int(sys.argv[5])
if mode == "rst":
    s = socket.create_connection((addr, port))
    s.send(b"x")
    sys.stdin.read()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    s.close()
elif mode == "client":
    s = socket.socket(af, socket.SOCK_DGRAM)
    s.connect((addr, port))
    p = select.poll()
    p.register(s, select.POLLIN)
    for line in sys.stdin:
        cmd = line.split()
        got = 0
        if cmd[0] == "t":
            end = time.time() + float(cmd[1])
            while time.time() < end:
                s.send(b"k" * arg)
                time.sleep(0.01)
                while p.poll(0):
                    s.recv(65535)
                    got += 1
        else:
            for i in range(int(cmd[0])):
                s.send(b"d" * arg)
                if p.poll(2000):
                    s.recv(65535)
                    got += 1
        print(got, flush=True)
elif mode == "many":
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    p = select.poll()
    socks = {}
    for i in range(arg):
        s = socket.socket(af, socket.SOCK_DGRAM)
        s.connect((addr, port))
        s.send(b"m")
        socks[s.fileno()] = s
        p.register(s, select.POLLIN)
    got, end = 0, time.time() + 60
    while got < arg and time.time() < end:
        for fd, _ in p.poll(1000):
            socks[fd].recv(65535)
            p.unregister(fd)
            got += 1
    print(got, flush=True)
    sys.stdin.read()
elif mode == "steady":
    socks = {}

    def steady_open(n):
        new = []
        for i in range(n):
            s = socket.socket(af, socket.SOCK_DGRAM)
            s.connect((addr, port))
            s.setblocking(False)
            new.append(s.getsockname()[1])
            socks[new[-1]] = s
        print(*new, flush=True)

    steady_open(arg)
    sent = got = 0
    cmds = b""
    while True:
        for s in socks.values():
            s.send(b"s")
            sent += 1
        end = time.time() + 0.2
        while time.time() < end:
            r, _, _ = select.select([sys.stdin] + list(socks.values()), [], [],
                                    max(end - time.time(), 0))
            for s in r:
                if s is sys.stdin:
                    d = os.read(0, 4096)
                    if not d:
                        print(sent, got, flush=True)
                        sys.exit(0)
                    cmds += d
                    while b"\n" in cmds:
                        line, cmds = cmds.split(b"\n", 1)
                        cmd, n = line.split()
                        if cmd == b"open":
                            steady_open(int(n))
                        elif int(n) in socks:
                            socks.pop(int(n)).close()
                    continue
                while s.fileno() >= 0:
                    try:
                        s.recv(65535)
                        got += 1
                    except BlockingIOError:
                        break
EOF

# lib.sh's wait_local_port_listen() gives up silently after a second,
# less than python3 takes to start under an emulated CPU.
wait_listen() {
	local ns=$1 proto=$2 port=$3 opt=-Hltn

	[ "$proto" = udp ] && opt=-Hlun
	busywait 5000 sh -c "ip netns exec $ns ss $opt 'sport = :$port' | grep -q ."
}

# Addresses and rule dump format of a family: ADDR_CLI, ADDR_SRV, ADDR_R0
# (router, side 1), ADDR_R1 (router, side 2), FMT (address:port).
family_addrs() {
	if [ "$1" = ipv4 ]; then
		ADDR_CLI=10.0.1.99 ADDR_SRV=10.0.2.99
		ADDR_R0=10.0.1.1 ADDR_R1=10.0.2.1 FMT="%s:%s"
	else
		ADDR_CLI=dead:1::99 ADDR_SRV=dead:2::99
		ADDR_R0=dead:1::1 ADDR_R1=dead:2::1 FMT="[%s]:%s"
	fi
}

# Rule dump fragments for the tags of side $1 ($TAGS0 or $TAGS1): what the
# ingress rule matches, what it pops, and what the egress rule pushes. The
# core lists both outermost first.
tags_match() { local t; for t in $1; do printf "vlan %s " "$t"; done; }
tags_pop() { local t; for t in $1; do printf "pop-vlan "; done; }
tags_push() { local t; for t in $1; do printf "push-vlan %s " "$t"; done; }

# Stop the connections through the router and wait for an empty table.
kill_flows() {
	for ns in "$ns1" "$ns2"; do
		ip netns pids "$ns" | xargs -r kill 2>/dev/null
	done
	ip netns exec "$nsr" conntrack -F 2>/dev/null
	ft_wait_count 15 0
}

# Set up one connection from host 1 to host 2, wait until the router
# offloads it, and derive the rule each direction must have from the case's
# addresses. Sets FLOW_* for the checks and the transfer.
#   flow_start TAG FAMILY tcp|udp none|snat|dnat [sw|rst]
# "sw": the flow must stay in software (no rule is expected); "rst": the
# TCP client resets the connection when the FIFO closes.
flow_start() {
	local tag=$1 fam=$2 proto=$3 nat=$4 sw="" rst=""
	local port=$((20000 + RANDOM % 10000)) tport daddr ct state
	local sport nport cli dst nsrc srv

	[ "${5:-}" = sw ] && sw=1
	[ "${5:-}" = rst ] && rst=1
	family_addrs "$fam"
	FLOW_TAG=$tag FLOW_FAM=$fam FLOW_PROTO=$proto FLOW_OK=0 FLOW_SENT=0
	[ "$nat" = dnat ] && port=$FWD_PORT
	tport=$port daddr=$ADDR_SRV
	[ "$nat" = dnat ] && tport=$VPORT daddr=$ADDR_R0
	FLOW_TPORT=$tport

	if [ "$proto" = tcp ]; then
		rm -f "$tmp/out"
		ip netns exec "$ns2" socat -u "TCP-LISTEN:$port,reuseaddr,pf=$fam" \
			OPEN:"$tmp/out",creat,trunc &
	else
		ip netns exec "$ns2" python3 "$tmp/flows.py" server "$fam" $port &
	fi
	FLOW_SERVER=$!
	wait_listen "$ns2" "$proto" $port

	# The client reads from a FIFO the test writes to: one byte or
	# datagram sets the flow up; closing the FIFO closes a TCP connection.
	rm -f "$tmp/fifo" "$tmp/cout" && mkfifo "$tmp/fifo"
	if [ -n "$rst" ]; then
		ip netns exec "$ns1" python3 "$tmp/flows.py" rst "$fam" \
			"$daddr" $tport 0 < "$tmp/fifo" &
	elif [ "$proto" = tcp ]; then
		[ "$fam" = ipv6 ] && daddr="[$daddr]"
		ip netns exec "$ns1" socat -u OPEN:"$tmp/fifo" \
			"TCP:$daddr:$tport,pf=$fam" &
	else
		ip netns exec "$ns1" python3 "$tmp/flows.py" client "$fam" \
			"$daddr" $tport 1000 < "$tmp/fifo" > "$tmp/cout" &
	fi
	FLOW_CLIENT=$!
	exec {FLOW_FD}>"$tmp/fifo"
	[ "$proto" = udp ] && echo 1 >&$FLOW_FD
	[ "$proto" = tcp ] && [ -z "$rst" ] && printf x >&$FLOW_FD

	state=HW_OFFLOAD
	[ -n "$sw" ] && state=OFFLOAD
	slowwait 10 sh -c "ip netns exec $nsr conntrack -L -f $fam -p $proto --dport $tport \
			   2>/dev/null | grep -q '\[$state\]'"
	ct=$(ip netns exec "$nsr" conntrack -L -f "$fam" -p "$proto" --dport $tport 2>/dev/null |
	     head -n1)
	say "$tag: conntrack entry on the router"
	show echo "$ct"
	# In software the checks come after the transfer, when the core
	# has surely asked the engine.
	[ -n "$sw" ] || check "$tag: conntrack entry is HW_OFFLOAD" ct_is HW_OFFLOAD "$ct"

	# What each direction must match and what it must rewrite to: the
	# client's port from the entry, and with masquerade the port the
	# router picked (the reply tuple's destination port).
	sport=$(echo "$ct" | grep -o 'sport=[0-9]*' | head -n1 | cut -d= -f2)
	nport=$(echo "$ct" | grep -o 'dport=[0-9]*' | tail -n1 | cut -d= -f2)
	# shellcheck disable=SC2059
	{
	cli=$(printf "$FMT" "$ADDR_CLI" "$sport")
	srv=$(printf "$FMT" "$ADDR_SRV" "$port")
	case $nat in
	snat) dst=$srv nsrc=$(printf "$FMT" "$ADDR_R1" "$nport") ;;
	dnat) dst=$(printf "$FMT" "$ADDR_R0" "$tport") nsrc=$cli ;;
	*) dst=$srv nsrc=$cli ;;
	esac
	}
	FLOW_RULE_O="in $rp0 $proto $(tags_match "$TAGS0")$cli > $dst -> out $rp1 "
	FLOW_RULE_O+="$(tags_pop "$TAGS0")$(tags_push "$TAGS1")$nsrc > $srv "
	FLOW_RULE_R="in $rp1 $proto $(tags_match "$TAGS1")$srv > $nsrc -> out $rp0 "
	FLOW_RULE_R+="$(tags_pop "$TAGS1")$(tags_push "$TAGS0")$dst > $cli "

	say "$tag: rules in the flow engine"
	show ft_rules
	[ -n "$sw" ] && return
	if [ -n "$sport" ] && ft_rules | grep -qF -- "$FLOW_RULE_O" &&
	   ft_rules | grep -qF -- "$FLOW_RULE_R"; then
		pass "$tag: a rule per direction with the expected match and rewrite"
		FLOW_OK=1
	else
		fail "$tag: expected rules not in the flow engine"
		echo "# want: $FLOW_RULE_O"
		echo "# want: $FLOW_RULE_R"
		ft_rules | sed 's/^/# have: /'
	fi
}

flow_hw_bytes() {
	echo $(( $(ft_rule_field "$FLOW_RULE_O" bytes) + $(ft_rule_field "$FLOW_RULE_R" bytes) ))
}

# Send $1 bytes over the flow and check where they went; "sw" as $2: the
# flow is in software, so the router's stack must see them instead.
flow_transfer() {
	local size=$1 sw=${2:-} tag=$FLOW_TAG
	local hw0 sw0 fwd0 hw1 sw1 fwd1 n ct

	FLOW_SENT=1
	hw0=$(flow_hw_bytes)
	sw0=$(nft_bytes netdev sw seen)
	fwd0=$(nft_bytes inet filter routed)
	if [ "$FLOW_PROTO" = tcp ]; then
		local out=$tmp/out want=$((size + 1))

		head -c "$size" /dev/urandom > "$tmp/in"
		# In the background: a flow the engine breaks would block.
		cat "$tmp/in" >&$FLOW_FD &
		local writer=$!
		slowwait 60 sh -c "[ \$(stat -c %s $out 2>/dev/null || echo 0) -ge $want ]"
		kill $writer 2>/dev/null
	else
		n=$((size / 1000))
		echo $n >&$FLOW_FD
		slowwait 60 sh -c "[ \$(wc -l < $tmp/cout) -ge 2 ]"
		check "$tag: all $n datagrams echoed" \
			sh -c "[ \"\$(tail -n1 $tmp/cout)\" = $n ]"
	fi
	hw1=$(flow_hw_bytes)
	sw1=$(nft_bytes netdev sw seen)
	fwd1=$(nft_bytes inet filter routed)
	say "$tag: during the transfer of $size bytes"
	show echo "flow engine: +$((hw1 - hw0)) bytes;" \
		  "router stack ingress: +$((sw1 - sw0)) bytes;" \
		  "forward chain: +$((fwd1 - fwd0)) bytes"

	if [ -n "$sw" ]; then
		check "$tag: the router's stack forwarded the data" \
			[ $((sw1 - sw0)) -ge "$size" ]
		ct=$(ip netns exec "$nsr" conntrack -L -f "$FLOW_FAM" -p "$FLOW_PROTO" \
		     --dport "$FLOW_TPORT" 2>/dev/null | head -n1)
		check "$tag: conntrack entry is OFFLOAD, not HW_OFFLOAD" \
			ct_sw "$ct"
		check "$tag: no rule in the flow engine" [ "$(ft_count)" -eq 0 ]
		return
	fi
	check "$tag: hardware counters grew by the transferred volume" \
		[ $((hw1 - hw0)) -ge "$size" ]
	# A few stray packets (ACKs racing the rule install) are fine.
	check "$tag: offloaded packets bypassed the router's stack" \
		[ $((sw1 - sw0)) -lt $((size / 100)) -a $((fwd1 - fwd0)) -lt $((size / 100)) ]
}

# Close the flow: a TCP client closes (FIN, which goes to software and
# tears the flow down); a UDP flow is deleted from conntrack. Then check
# the data and that the rules are gone.
flow_close() {
	local tag=$FLOW_TAG

	exec {FLOW_FD}>&-
	slowwait 10 sh -c "! kill -0 $FLOW_CLIENT 2>/dev/null" || kill $FLOW_CLIENT
	wait "$FLOW_CLIENT" 2>/dev/null
	if [ "$FLOW_PROTO" = tcp ]; then
		slowwait 10 sh -c "! kill -0 $FLOW_SERVER 2>/dev/null"
		[ "$FLOW_SENT" = 1 ] && check "$tag: data arrived intact" \
			sh -c "tail -c +2 $tmp/out | cmp -s $tmp/in -"
	else
		ip netns exec "$nsr" conntrack -D -p udp --dport "$FLOW_TPORT" >/dev/null 2>&1
	fi
	kill "$FLOW_SERVER" 2>/dev/null
	# The next case may bind the same port.
	wait "$FLOW_SERVER" 2>/dev/null
	[ "$FLOW_OK" = 1 ] || return 0
	if ft_wait_gone 15 "$FLOW_RULE_O" "$FLOW_RULE_R"; then
		pass "$tag: rules removed after the flow ended"
	else
		fail "$tag: rules still installed after the flow ended"
		ft_rules | sed 's/^/# /'
	fi
}

# One flow through the router: set up, transfer, close.
run_flow() {
	local tag=$1 fam=$2 proto=$3 nat=$4 size=${5:-262144}

	flow_start "$tag" "$fam" "$proto" "$nat"
	if [ "$FLOW_OK" = 1 ]; then
		flow_transfer "$size"
	fi
	flow_close
}

case_nat() {
	local nat fam proto

	topo plain
	for nat in none snat dnat; do
		load_ruleset $nat || { fail "$nat: cannot load the ruleset"; continue; }
		say "router ruleset"
		show ip netns exec "$nsr" nft list ruleset
		for fam in ipv4 ipv6; do
			for proto in tcp udp; do
				run_flow "$fam $proto $nat" $fam $proto $nat
			done
		done
	done
}

case_encap() {
	local t

	for t in vlan qinq bridge; do
		kill_flows
		topo $t
		load_ruleset snat || { fail "$t: cannot load the ruleset"; continue; }
		run_flow "$t ipv4 tcp snat" ipv4 tcp snat
		run_flow "$t ipv6 udp snat" ipv6 udp snat
	done
	kill_flows
	topo plain
}

UDP_TIMEOUT=4

case_teardown() {
	local age

	kill_flows
	load_ruleset snat

	# RST: the client aborts the connection; the reset goes to software,
	# which must tear the flow down.
	flow_start "tcp rst" ipv4 tcp snat rst
	exec {FLOW_FD}>&-
	if [ "$FLOW_OK" = 1 ]; then
		if ft_wait_gone 15 "$FLOW_RULE_O" "$FLOW_RULE_R"; then
			pass "tcp rst: rules removed after the reset"
		else
			fail "tcp rst: rules still installed after the reset"
		fi
	fi
	kill "$FLOW_CLIENT" "$FLOW_SERVER" 2>/dev/null
	wait "$FLOW_CLIENT" "$FLOW_SERVER" 2>/dev/null
	kill_flows

	# UDP: only the hardware sees the flow's packets. The core must learn
	# from the engine's counters that it is alive (it asks when less than
	# 90% of the timeout is left); once it goes idle, it must expire.
	local tmo
	tmo=$(ip netns exec "$nsr" sysctl -n net.netfilter.nf_flowtable_udp_timeout)
	if ! ip netns exec "$nsr" sysctl -qw \
		net.netfilter.nf_flowtable_udp_timeout=$UDP_TIMEOUT; then
		ktap_test_skip "udp keepalive: cannot set nf_flowtable_udp_timeout"
		kill_flows
		return
	fi
	flow_start "udp keepalive" ipv4 udp snat
	if [ "$FLOW_OK" = 1 ]; then
		local sw0 sw1
		sw0=$(nft_bytes netdev sw seen)
		echo "t $((3 * UDP_TIMEOUT))" >&$FLOW_FD
		slowwait $((3 * UDP_TIMEOUT + 10)) sh -c "[ \$(wc -l < $tmp/cout) -ge 2 ]"
		sw1=$(nft_bytes netdev sw seen)
		age=$(ft_rule_field "$FLOW_RULE_O" age_ms)
		say "udp keepalive: after $((3 * UDP_TIMEOUT)) s of traffic"
		show ft_rules
		show echo "router stack ingress: +$((sw1 - sw0)) bytes"
		echo "# rule age: $age ms"
		check "udp keepalive: busy flow outlived 3 timeouts in hardware" \
			[ "$age" -ge $((3 * UDP_TIMEOUT * 1000)) ]
		# The "t" command's own line, after the one of flow_start.
		check "udp keepalive: echoes came back" \
			[ "$(wc -l < "$tmp/cout")" -ge 2 -a "$(tail -n1 "$tmp/cout")" -gt 0 ]
		check "udp keepalive: the router's stack saw none of it" \
			[ $((sw1 - sw0)) -lt 2000 ]
		if ft_wait_gone $((2 * UDP_TIMEOUT + 5)) "$FLOW_RULE_O" "$FLOW_RULE_R"; then
			pass "udp timeout: idle flow removed from the engine"
		else
			fail "udp timeout: idle flow still in the engine"
		fi
	fi
	exec {FLOW_FD}>&-
	kill "$FLOW_CLIENT" "$FLOW_SERVER" 2>/dev/null
	wait "$FLOW_CLIENT" "$FLOW_SERVER" 2>/dev/null
	ip netns exec "$nsr" sysctl -qw net.netfilter.nf_flowtable_udp_timeout="$tmo"
	kill_flows
}

case_fallback() {
	kill_flows
	load_ruleset snat
	ft_fault fail_add 1
	flow_start "fallback tcp" ipv4 tcp snat sw
	flow_transfer 262144 sw
	flow_close
	flow_start "fallback udp" ipv6 udp snat sw
	flow_transfer 65536 sw
	flow_close
	ft_fault fail_add 0
	kill_flows
}

# An idle TCP connection from ns1 to ns2 that is offloaded (2 rules).
offload_idle_flow() {
	local port=$((21000 + RANDOM % 1000))

	ip netns exec "$ns2" socat -u TCP4-LISTEN:$port,reuseaddr OPEN:/dev/null &
	wait_listen "$ns2" tcp $port
	# All of the client in ns1, so that kill_flows ends it.
	ip netns exec "$ns1" sh -c "{ printf x; sleep 60; } |
				   socat -u STDIN TCP4:10.0.2.99:$port" &
	ft_wait_count 30 2
}

# Rules a port still held when its callback was unbound: the core must
# have destroyed them first, or real hardware would keep forwarding them.
FT_STALE=$FT_DIR/stale_on_unbind

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
			ktap_test_skip "$what: this nft cannot do it: $*"
		else
			fail "$what: command failed: $*"
			echo "$err" | sed 's/^/# /'
		fi
		return
	fi
	if [ "$(cat "$FT_STALE")" -eq "$stale0" ]; then
		pass "$what: flows destroyed before the unbind"
	else
		fail "$what: $(($(cat "$FT_STALE") - stale0)) rules still installed at unbind"
	fi
	[ "$left" = left ] || return
	if ft_wait_count 15 0; then
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

# The netns goes away in the background: wait until its flowtable is gone.
del_router_ns() {
	ip netns del "$nsr" && ft_wait_count 30 0
}

case_unbind() {
	topo plain
	test_unbind "device removed from the flowtable" left \
		nft_router delete flowtable inet filter f "{ devices = { $rp1 } ; }"
	test_unbind "flowtable deleted" - \
		nft_router "flush chain inet filter forward; delete flowtable inet filter f"
	test_unbind "ruleset flushed" - nft_router flush ruleset
	test_unbind "router port deleted" - del_port

	# A new port 1, for the namespace case.
	rp1=$(create_netdevsim_port $IDR "$nsr" 1)
	if [ -z "$rp1" ] || ! nsim_link "$nsr" "$rp1" "$ns2" "$h2"; then
		fail "router port re-created"
		return
	fi
	topo plain
	# Its ports go back to init_net: the rules must go with the flowtable.
	# del_router_ns itself waits for the rule table to empty.
	test_unbind "router netns deleted" - del_router_ns
}

# udp_start NAME MODE ADDR PORT N: the UDP echo server of host 2 on PORT
# and a flows.py MODE client of host 1 to ADDR:PORT with argument N that
# reads $tmp/NAME.in (held open in NAME_FD) and writes $tmp/NAME.out;
# their pids in NAME_SERVER and NAME_CLIENT.
udp_start() {
	local name=$1 mode=$2 addr=$3 port=$4 n=$5 fd

	ip netns exec "$ns2" python3 "$tmp/flows.py" server ipv4 "$port" &
	printf -v "${name}_SERVER" %s $!
	wait_listen "$ns2" udp "$port"
	rm -f "$tmp/$name.in" "$tmp/$name.out" && mkfifo "$tmp/$name.in"
	ip netns exec "$ns1" python3 "$tmp/flows.py" "$mode" ipv4 "$addr" \
		"$port" "$n" < "$tmp/$name.in" > "$tmp/$name.out" &
	printf -v "${name}_CLIENT" %s $!
	exec {fd}>"$tmp/$name.in"
	printf -v "${name}_FD" %s "$fd"
}

# udp_flows N ADDR PORT: N UDP flows from host 1 to a server on host 2
# at ADDR:PORT, one datagram each way, open until udp_flows_end.
# Succeeds if every flow had its answer.
udp_flows() {
	local n=$1 addr=$2 port=$3

	udp_start UDP many "$addr" "$port" "$n"
	slowwait 90 sh -c "[ -s $tmp/UDP.out ]"
	[ "$(cat "$tmp/UDP.out")" = "$n" ]
}

udp_flows_end() {
	exec {UDP_FD}>&-
	kill "$UDP_CLIENT" "$UDP_SERVER" 2>/dev/null
	wait "$UDP_CLIENT" "$UDP_SERVER" 2>/dev/null
}

# Many flows at once: each one UDP datagram each way.
case_scale() {
	local n=1000 hw

	kill_flows
	topo plain
	load_ruleset none
	check "scale: $n flows answered" udp_flows $n 10.0.2.99 5301
	ft_wait_count 120 $((2 * n))
	hw=$(ip netns exec "$nsr" conntrack -L -p udp --dport 5301 2>/dev/null |
	     grep -c HW_OFFLOAD)
	echo "# rules: $(ft_count), [HW_OFFLOAD] entries: $hw"
	check "scale: $((2 * n)) rules in the engine" [ "$(ft_count)" -eq $((2 * n)) ]
	check "scale: $n conntrack entries HW_OFFLOAD" [ "$hw" -eq $n ]
	udp_flows_end
	ip netns exec "$nsr" conntrack -F 2>/dev/null
	if ft_wait_count 60 0; then
		pass "scale: all rules removed"
	else
		fail "scale: $(ft_count) rules left"
	fi
}

# The router's columns $@ of /proc/net/stat/nf_flowtable, each summed over
# the CPUs (one may count a flow in and another out), from one read.
ft_stat() {
	ip netns exec "$nsr" awk -v c="$*" '
		NR == 1 {
			k = split(c, w, " ")
			for (j = 1; j <= k; j++)
				for (i = 1; i <= NF; i++) if ($i == w[j]) n[j] = i
			next
		}
		{ for (j = 1; j <= k; j++) s[j] += $n[j] }
		END {
			for (j = 1; j <= k; j++) if (!n[j]) exit 1
			for (j = 1; j <= k; j++) printf "%.0f%s", s[j], j < k ? " " : "\n"
		}' /proc/net/stat/nf_flowtable
}

FT_STATS="hw_flows hw_add hw_add_ok hw_add_nodev hw_add_err hw_del hw_del_err hw_stats
	  hw_stats_err hw_add_full hw_add_refused"
# Counters that depend on timing: marked, but not in ft_stat_check.
FT_STATS_TIMED="hw_backoff hw_add_skip"
declare -A STAT0

ft_stat_mark() {
	local c i=0 v

	read -r -a v < <(ft_stat $FT_STATS $FT_STATS_TIMED) || return 1
	for c in $FT_STATS $FT_STATS_TIMED; do
		STAT0[$c]=${v[i++]}
	done
}

# How far counter $1 moved since ft_stat_mark.
ft_stat_delta() {
	echo $(( $(ft_stat "$1") - STAT0[$1] ))
}

# Whether counter $1 moved by $2 since ft_stat_mark.
ft_stat_is() {
	[ "$(ft_stat_delta "$1")" -eq "$2" ]
}

# ft_stat_check WHAT [COUNTER=DELTA]...: every counter moved by exactly
# the DELTA given for it, or not at all.
ft_stat_check() {
	local what=$1 a c d want bad=""
	local -A exp=()

	shift
	for a in "$@"; do exp[${a%%=*}]=${a#*=}; done
	for c in $FT_STATS; do
		d=$(ft_stat_delta "$c")
		want=${exp[$c]:-0}
		[ "$d" -eq "$want" ] || bad="$bad $c=$d (want $want)"
	done
	if [ -z "$bad" ]; then
		pass "$what: counters"
	else
		fail "$what: counters:$bad"
	fi
}

TRACE=/sys/kernel/tracing
TRACING=0

# Record the nf_flowtable trace events, if the kernel has them, in a
# tracing instance of our own: the global buffer is the user's.
trace_start() {
	[ -d $TRACE/events ] || mount -t tracefs none $TRACE 2>/dev/null
	[ -d $TRACE/events/nf_flowtable ] || return 0
	TRACE_INST=$TRACE/instances/nft_flowtable_hw_offload_$$
	mkdir "$TRACE_INST" &&
		echo 1 > "$TRACE_INST/events/nf_flowtable/enable" && TRACING=1
}

trace_stop() {
	[ -n "$TRACE_INST" ] && rmdir "$TRACE_INST"
	TRACING=0 TRACE_INST=""
}

trace_clear() {
	[ $TRACING = 0 ] || : > "$TRACE_INST/trace"
}

# How many recorded events hold every one of the strings given.
trace_count() {
	local lines s

	lines=$(cat "$TRACE_INST/trace")
	for s in "$@"; do lines=$(grep -F -- "$s" <<< "$lines"); done
	if [ -n "$lines" ]; then wc -l <<< "$lines"; else echo 0; fi
}

# trace_check WHAT N STRING...: N events hold all the strings.
trace_check() {
	local what=$1 n=$2 got

	shift 2
	if [ $TRACING = 0 ]; then
		ktap_test_skip "$what (no nf_flowtable trace events)"
		return
	fi
	got=$(trace_count "$@")
	if [ "$got" -eq "$n" ]; then
		pass "$what"
	else
		fail "$what: $got events, not $n"
		grep -F -- "$1" "$TRACE_INST/trace" | head -n 4 | sed 's/^/# /'
	fi
}

# observe_flows WHAT ADDR RULES DEV ANSWER [COUNTER=DELTA]...: N UDP
# flows from host 1 to ADDR through the router's port DEV, of which the
# engine installs RULES rules. The counters must show each flow added
# once, accepted or refused (and the further COUNTER=DELTA given), and
# deleted once when conntrack drops it; the trace, both directions of each
# flow with the drivers' ANSWER ("accepted=N err=E msg=...").
OBS_N=8
observe_flows() {
	local what=$1 addr=$2 rules=$3 dev=$4 answer=$5
	local port=$((5400 + RANDOM % 100)) ok=$OBS_N err=0 flows=$OBS_N
	local more=("${@:6}")

	[ "$rules" -eq 0 ] && ok=0 err=$OBS_N flows=0
	trace_clear
	ft_stat_mark || { fail "$what: no hw_* counters"; return; }
	if ! udp_flows $OBS_N "$addr" $port; then
		fail "$what: $OBS_N flows answered"
		udp_flows_end
		return
	fi
	slowwait 30 ft_stat_is hw_add $OBS_N
	ft_wait_count 10 "$rules"
	check "$what: $rules rules in the engine" [ "$(ft_count)" -eq "$rules" ]
	ft_stat_check "$what: $OBS_N flows" hw_add=$OBS_N hw_add_ok=$ok \
		hw_add_err=$err hw_flows=$flows "${more[@]}"
	say "$what: the router's /proc/net/stat/nf_flowtable"
	show ip netns exec "$nsr" cat /proc/net/stat/nf_flowtable
	trace_check "$what: trace of the original directions" $OBS_N \
		"nf_flowtable_offload_add: dev=$rp0 proto=17 src=10.0.1.99:" \
		"dst=$addr:$port dir=original $answer"
	trace_check "$what: trace of the reply directions" $OBS_N \
		"nf_flowtable_offload_add: dev=$dev proto=17 src=$addr:$port " \
		"dst=10.0.1.99:" "dir=reply $answer"
	if [ $TRACING = 1 ]; then
		say "$what: the first trace events"
		show grep -m 2 -F nf_flowtable_offload_add: "$TRACE_INST/trace"
	fi

	udp_flows_end
	ip netns exec "$nsr" conntrack -D -p udp --orig-port-dst $port >/dev/null 2>&1
	slowwait 30 ft_stat_is hw_del $OBS_N
	ft_wait_count 10 0
	ft_stat_check "$what: $OBS_N flows deleted" hw_add=$OBS_N hw_add_ok=$ok \
		hw_add_err=$err hw_del=$OBS_N "${more[@]}"
	trace_check "$what: trace of the deletes" $((2 * OBS_N)) \
		"nf_flowtable_offload_del: " ":$port "
}

# Flows that expire in hardware after polls of their counters: how many
# polls the gc makes depends on timing, so only their outcome is exact.
observe_stats() {
	local what=$1 fault=$2 port=$((5500 + RANDOM % 100)) polls failed=0
	local answer

	ft_fault fail_stats "$fault"
	trace_clear
	ft_stat_mark || { fail "$what: no hw_* counters"; return; }
	udp_flows $OBS_N 10.0.2.99 $port || fail "$what: $OBS_N flows answered"
	slowwait 30 ft_stat_is hw_del $OBS_N
	ft_wait_count 10 0
	udp_flows_end
	ft_fault fail_stats 0
	polls=$(ft_stat_delta hw_stats)
	[ "$fault" = 1 ] && failed=$polls
	echo "# $what: $polls polls"
	check "$what: counters were polled" [ "$polls" -gt 0 ]
	# hw_stats is taken as counted (checked above to be > 0); the
	# others, hw_stats_err included, are exact.
	ft_stat_check "$what" hw_add=$OBS_N hw_add_ok=$OBS_N hw_del=$OBS_N \
		hw_stats="$polls" hw_stats_err=$failed
	if [ "$fault" = 1 ]; then
		answer='accepted=0 err=-5 msg="netdevsim: injected failure (fail_stats)"'
	else
		answer="accepted=1 err=0"
	fi
	trace_check "$what: trace of the polls" $((2 * polls)) \
		"nf_flowtable_offload_stats: " ":$port " "$answer"
	ip netns exec "$nsr" conntrack -D -p udp --orig-port-dst $port >/dev/null 2>&1
}

# The size of the router's rule table.
ft_size() {
	ip netns exec "$nsr" devlink resource show netdevsim/netdevsim$IDR |
		awk '/flowtable_rules/ { for (i = 1; i < NF; i++)
					 if ($i == "size") print $(i + 1) }'
}

# Give the router's device a rule table of $1 entries: devlink applies the
# size by reloading the device, which re-creates its ports; give them
# their names and cables back.
router_resize() {
	local dev

	ip netns exec "$nsr" nft flush ruleset
	ip netns exec "$nsr" devlink resource set netdevsim/netdevsim$IDR \
		path /flowtable_rules size "$1" &&
	ip netns exec "$nsr" devlink dev reload netdevsim/netdevsim$IDR ||
		return 1
	dev=$(ip netns exec "$nsr" ls /sys/bus/netdevsim/devices/netdevsim$IDR/net)
	ip -net "$nsr" link set "$dev" name "$rp0" &&
	ip -net "$nsr" link set "$rp0" up &&
	[ "$(create_netdevsim_port $IDR "$nsr" 1)" = "$rp1" ] &&
	nsim_link "$ns1" "$h1" "$nsr" "$rp0" &&
	nsim_link "$nsr" "$rp1" "$ns2" "$h2"
}

YNL=$net_netfilter_dir/../../../../net/ynl/pyynl/cli.py

# Add a flowtable holding device $1 with YNL, which prints the extack
# message nft does not; succeeds if the kernel refused it for reason $2.
ynl_bind_refused() {
	local out created=0

	ip netns exec "$nsr" nft add table inet obs || return 1
	out=$(ip netns exec "$nsr" python3 "$YNL" --family nftables \
		--multi batch-begin '{"res-id": 10}' \
		--multi newflowtable '{"table": "obs", "name": "f",
			"nfgen-family": 1, "flags": 1,
			"hook": {"num": 0, "priority": 0,
				 "devs": {"name": ["'"$1"'"]}}}' \
		--multi batch-end '{"res-id": 10}' 2>&1)
	echo "$out" | sed 's/^/# ynl: /'
	ip netns exec "$nsr" nft list flowtable inet obs f >/dev/null 2>&1 &&
		created=1
	ip netns exec "$nsr" nft delete table inet obs
	[ $created = 0 ] && grep -qF -- "$2" <<< "$out"
}

# steady_start N ADDR PORT: N UDP flows from host 1 to ADDR:PORT, each a
# datagram every 200 ms; their source ports in STEADY_PORTS. steady_open
# N: N more.
steady_start() {
	local n=$1 addr=$2 port=$3

	udp_start STEADY steady "$addr" "$port" "$n"
	slowwait 30 sh -c "[ -s $tmp/STEADY.out ]"
	STEADY_PORTS=$(head -n1 "$tmp/STEADY.out")
	[ "$(wc -w <<< "$STEADY_PORTS")" -eq "$n" ]
}

steady_open() {
	local lines

	lines=$(wc -l < "$tmp/STEADY.out")
	echo "open $1" >&$STEADY_FD
	slowwait 30 sh -c "[ \$(wc -l < $tmp/STEADY.out) -gt $lines ]"
}

# End the flows; succeeds if at least 95% of the datagrams came back.
steady_end() {
	local sent got

	exec {STEADY_FD}>&-
	wait "$STEADY_CLIENT"
	kill "$STEADY_SERVER" 2>/dev/null
	wait "$STEADY_SERVER" 2>/dev/null
	read -r sent got < <(tail -n1 "$tmp/STEADY.out")
	echo "# $got of $sent datagrams came back"
	[ -n "$got" ] && [ "$sent" -gt 0 ] && [ $((got * 100)) -ge $((sent * 95)) ]
}

# Source ports of the flows to PORT the router holds in hardware.
hw_sports() {
	ip netns exec "$nsr" conntrack -L -p udp --dport "$1" 2>/dev/null |
		awk '/HW_OFFLOAD/ { for (i = 1; i <= NF; i++)
				    if ($i ~ /^sport=/) { print substr($i, 7); break } }'
}

hw_count() {
	hw_sports "$1" | wc -l
}

ft_occ() {
	ip netns exec "$nsr" devlink resource show netdevsim/netdevsim$IDR |
		awk '/flowtable_rules/ { for (i = 1; i < NF; i++)
					 if ($i == "occ") print $(i + 1) }'
}

# A second netdevsim device: router port XDEV_RX, host 2 port XDEV_H3, and
# the subnet 10.0.3.0/24 between them. The engine of the router's first
# device cannot send a flow out of it.
xdev_up() {
	XDEV_RX=$(create_netdevsim $IDX "$nsr")
	XDEV_H3=$(create_netdevsim $ID3 "$ns2")
	[ -n "$XDEV_RX" ] && [ -n "$XDEV_H3" ] &&
		nsim_link "$nsr" "$XDEV_RX" "$ns2" "$XDEV_H3" || return 1
	ip -net "$nsr" addr add 10.0.3.1/24 dev "$XDEV_RX"
	ip -net "$ns2" addr add 10.0.3.99/24 dev "$XDEV_H3"
	ip -net "$ns2" route add 10.0.1.0/24 via 10.0.3.1 dev "$XDEV_H3"
}

xdev_down() {
	ip -net "$ns2" route del 10.0.1.0/24 via 10.0.3.1 2>/dev/null
	cleanup_netdevsim $IDX
	cleanup_netdevsim $ID3
}

# Refused flows that expire: the gc polls a flow due (less than 90% of
# its timeout left) at each pass, but only if a driver took it; refused
# flows have no counters to read.
observe_refused() {
	local what="refused flows expire" port=$((5600 + RANDOM % 100))

	ft_stat_mark || { fail "$what: no hw_* counters"; return; }
	ft_fault fail_add 1
	udp_flows $OBS_N 10.0.2.99 $port || fail "$what: $OBS_N flows answered"
	slowwait 30 ft_stat_is hw_del $OBS_N
	udp_flows_end
	ft_fault fail_add 0
	ft_stat_check "$what without a counter poll" hw_add=$OBS_N \
		hw_add_err=$OBS_N hw_del=$OBS_N
	ip netns exec "$nsr" conntrack -D -p udp --orig-port-dst $port >/dev/null 2>&1
}

case_observe() {
	local tmo size veth=obsveth

	if [ ! -r /proc/net/stat/nf_flowtable ]; then
		ktap_test_skip "observe: no /proc/net/stat/nf_flowtable"
		return
	fi
	kill_flows
	topo plain

	# The driver's reason for refusing a device reaches user space.
	if [ ! -f "$YNL" ] || ! python3 -c 'import yaml, jsonschema' 2>/dev/null; then
		# YNL comes with the kernel tree and needs PyYAML and jsonschema.
		ktap_test_skip "bind refused: reason in the extack (no YNL)"
		ktap_test_skip "bind to a device without offload: reason in the extack"
	else
		ft_fault fail_bind 1
		check "bind refused: reason in the extack" \
			ynl_bind_refused "$rp0" "$rp0: netdevsim: injected failure (fail_bind)"
		ft_fault fail_bind 0
		ip -net "$nsr" link add $veth type veth peer name ${veth}p
		check "bind to a device without offload: reason in the extack" \
			ynl_bind_refused $veth "$veth: device cannot offload flowtables"
		ip -net "$nsr" link del $veth
	fi

	# No gc poll of the hardware counters while the flows below live: the
	# gc polls a flow only once less than 90% of its timeout is left.
	tmo=$(ip netns exec "$nsr" sysctl -n net.netfilter.nf_flowtable_udp_timeout)
	ip netns exec "$nsr" sysctl -qw net.netfilter.nf_flowtable_udp_timeout=3600

	trace_start
	load_ruleset none
	observe_flows "accepted" 10.0.2.99 $((2 * OBS_N)) "$rp1" \
		'accepted=1 err=0 msg=""'
	ft_fault fail_add 1
	observe_flows "refused: injected fault" 10.0.2.99 0 "$rp1" \
		'accepted=0 err=-5 msg="netdevsim: injected failure (fail_add)"'
	ft_fault fail_add 0

	# A port of another device in the flowtable: the engine cannot send
	# a flow out of it.
	if xdev_up; then
		FT_EXTRA_DEV=$XDEV_RX load_ruleset none
		local why="netdevsim: egress device is not a port of this device"
		observe_flows "refused: egress on another device" 10.0.3.99 0 \
			"$XDEV_RX" "accepted=0 err=-95 msg=\"$why\"" \
			hw_add_refused=$OBS_N
		load_ruleset none
	else
		fail "refused: egress on another device: ports of a second device"
	fi
	xdev_down

	if ! devlink -V >/dev/null 2>&1; then
		ktap_test_skip "refused: table full (no devlink tool)"
	else
		size=$(ft_size)
		if router_resize 0 && topo plain && load_ruleset none; then
			# Once a port answered that the table is full, the
			# core stops asking it for a while: the first flow
			# costs 3 calls, the others none (4 each before).
			echo 0 > "$FT_DIR/replace_calls"
			observe_flows "refused: table full" 10.0.2.99 0 "$rp1" \
				'accepted=0 err=-28 msg="' hw_add_full=$OBS_N
			echo "# refused: table full:" \
			     "$(cat "$FT_DIR/replace_calls") add calls"
			check "refused: table full: later flows not offered" \
				[ "$(cat "$FT_DIR/replace_calls")" -le $OBS_N ]
		else
			fail "refused: table full: router device resized"
		fi
		router_resize "$size" ||
			ktap_exit_fail_msg "cannot restore the router's device"
		topo plain
		load_ruleset none
	fi

	# Flows that expire quickly, so that the gc polls their counters.
	ip netns exec "$nsr" sysctl -qw net.netfilter.nf_flowtable_udp_timeout=2
	observe_stats "counters polled" 0
	observe_stats "counters polled, engine fails" 1
	observe_refused
	ip netns exec "$nsr" sysctl -qw net.netfilter.nf_flowtable_udp_timeout="$tmo"
	trace_stop
	kill_flows
}

# A table of 2 * CAP_N rules and CAP_N + CAP_K flows, each sending a
# datagram every 200 ms: CAP_N flows in hardware, CAP_K waiting.
CAP_N=8
CAP_K=8
# Driver calls the waiting flows may cost in CAP_WAIT seconds. The core
# asks a port that answered -ENOSPC again after 1, 2, 4, 8, then every 16
# seconds: at most 5 probes in 30 s for each of the 2 ports, a probe
# costing up to 2 calls (the first request may be a direction of a flow
# the port does not take); and a request may be on its way to a port when
# the port is marked: 2 per waiting flow. Without the marks and backoff,
# the core asks both ports for both directions of each waiting flow
# about once a second: 4 * CAP_K * CAP_WAIT = 960 calls.
CAP_WAIT=30
CAP_BOUND=$((2 * 5 * 2 + 2 * CAP_K))

capacity_full() {
	local port=$((5600 + RANDOM % 100)) n2=$((2 * CAP_N)) calls p m=2 t0

	# The waiting flows start once the table is full: flows that start
	# together may each get one direction into the last rules.
	if ! steady_start $CAP_N 10.0.2.99 $port || ! ft_wait_count 60 $n2 ||
	   ! steady_open $CAP_K; then
		fail "capacity: $((CAP_N + CAP_K)) steady flows started"
		steady_end
		return
	fi
	slowwait 10 sh -c "[ \$(ip netns exec $nsr conntrack -L -p udp \
			     --dport $port 2>/dev/null | grep -c HW_OFFLOAD) \
			     -ge $CAP_N ]"
	check "capacity: $n2 rules in a table of $n2" [ "$(ft_count)" -eq $n2 ]
	check "capacity: devlink reports occupancy $n2" [ "$(ft_occ)" = $n2 ]
	check "capacity: $CAP_N flows in hardware" [ "$(hw_count $port)" -eq $CAP_N ]

	echo 0 > "$FT_DIR/replace_calls"
	ft_stat_mark || fail "capacity: no hw_* counters"
	sleep $CAP_WAIT
	calls=$(cat "$FT_DIR/replace_calls")
	echo "# capacity: $CAP_K flows waited $CAP_WAIT s: $calls add calls" \
	     "to the driver, $(ft_stat_delta hw_add) add requests," \
	     "$(ft_stat_delta hw_backoff) refreshes held back," \
	     "$(ft_stat_delta hw_add_skip) requests skipping a full port"
	check "capacity: at most $CAP_BOUND add calls in $CAP_WAIT s" \
		[ "$calls" -le $CAP_BOUND ]
	check "capacity: the waiting flows backed off" \
		[ "$(ft_stat_delta hw_backoff)" -gt 0 ]
	check "capacity: nothing installed meanwhile" \
		[ "$(ft_stat_delta hw_add_ok)" -eq 0 ]

	# Room for m flows: waiting flows take it within the short backoff's
	# cap (16 s) and a refresh.
	for p in $(hw_sports $port | head -n $m); do
		echo "close $p" >&$STEADY_FD
		ip netns exec "$nsr" conntrack -D -p udp --orig-port-src "$p" \
			>/dev/null 2>&1
	done
	ft_wait_count 10 $((n2 - 2 * m))
	t0=$SECONDS
	if slowwait 20 sh -c "[ \$(ip netns exec $nsr conntrack -L -p udp \
			       --dport $port 2>/dev/null | grep -c HW_OFFLOAD) \
			       -ge $CAP_N ]"; then
		echo "# capacity: room taken within $((SECONDS - t0)) s"
		pass "capacity: $m waiting flows took the room of $m closed ones"
	else
		fail "capacity: $(hw_count $port) flows in hardware, not $CAP_N"
	fi
	check "capacity: table full again" [ "$(ft_count)" -eq $n2 ]
	check "capacity: every flow forwarded" steady_end
	ip netns exec "$nsr" conntrack -D -p udp --orig-port-dst $port >/dev/null 2>&1
	ft_wait_count 30 0
}

# Flows every port refuses (-EOPNOTSUPP): offered on the long backoff.
capacity_refused() {
	local port=$((5700 + RANDOM % 100)) n=2 add

	if ! xdev_up; then
		fail "capacity: refused: ports of a second device"
		xdev_down
		return
	fi
	FT_EXTRA_DEV=$XDEV_RX load_ruleset none
	ft_stat_mark || fail "capacity: no hw_* counters"
	check "capacity: refused: $n steady flows started" \
		steady_start $n 10.0.3.99 $port
	sleep $CAP_WAIT
	add=$(ft_stat_delta hw_add)
	echo "# capacity: refused: $n flows in $CAP_WAIT s: $add add requests," \
	     "$(ft_stat_delta hw_backoff) refreshes held back"
	# The first request and one after 16 s, where upstream asks about
	# once a second.
	check "capacity: refused: 2 add requests per flow in $CAP_WAIT s" \
		[ "$add" -eq $((2 * n)) ]
	check "capacity: refused: all of them refused" \
		[ "$(ft_stat_delta hw_add_refused)" -eq "$add" ]
	check "capacity: refused: forwarded in software" steady_end
	ip netns exec "$nsr" conntrack -D -p udp --orig-port-dst $port >/dev/null 2>&1
	load_ruleset none
	xdev_down
}

# Rules that forward nothing: software sees the flows' packets and the
# core asks again, the model answers -EEXIST.
capacity_eexist() {
	local port=$((5800 + RANDOM % 100)) n=2

	ft_fault no_fwd 1
	ft_stat_mark || fail "capacity: no hw_* counters"
	if steady_start $n 10.0.2.99 $port; then
		sleep 5
		check "capacity: -EEXIST: $((2 * n)) rules, no second copy" \
			[ "$(ft_count)" -eq $((2 * n)) ]
		echo "# capacity: -EEXIST: $(ft_stat_delta hw_add) add requests"
		check "capacity: -EEXIST: refreshes counted as installed" \
			[ "$(ft_stat_delta hw_add_ok)" -gt $n ]
		check "capacity: -EEXIST: no refresh counted as an error" \
			[ "$(ft_stat_delta hw_add_err)" -eq 0 ]
	else
		fail "capacity: -EEXIST: $n steady flows started"
	fi
	steady_end
	ft_fault no_fwd 0
	ip netns exec "$nsr" conntrack -D -p udp --orig-port-dst $port >/dev/null 2>&1
	ft_wait_count 30 0
}

# How long the offload workers ran, in microseconds, from the workqueue
# events of a tracing instance: start and end of flow_offload_work_handler
# paired by worker.
work_trace_start() {
	[ -d $TRACE/events ] || mount -t tracefs none $TRACE 2>/dev/null
	WORK_INST=$TRACE/instances/nft_flowtable_hw_offload_wq_$$
	mkdir "$WORK_INST" &&
		echo 1 > "$WORK_INST/events/workqueue/workqueue_execute_start/enable" &&
		echo 1 > "$WORK_INST/events/workqueue/workqueue_execute_end/enable"
}

work_trace_stop() {
	echo 0 > "$WORK_INST/tracing_on"
	grep -F flow_offload_work_handler "$WORK_INST/trace" |
		awk '{ for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) t = $i + 0
		       if (/workqueue_execute_start/) s[$1] = t
		       else if ($1 in s) { sum += t - s[$1]; n++; delete s[$1] } }
		     END { printf "%d %d\n", sum * 1000000, n }'
	rmdir "$WORK_INST"
}

# pktgen_sink add PORTS | delete: the hosts drop the generator's datagrams
# (to and from its fixed ports PORTS) in an input chain: no ICMP errors.
pktgen_sink() {
	if [ "$1" = delete ]; then
		ip netns exec "$ns1" nft delete table ip pktgen_sink
		ip netns exec "$ns2" nft delete table ip pktgen_sink
		return
	fi
	ip netns exec "$ns1" nft "add table ip pktgen_sink;" \
		"add chain ip pktgen_sink in { type filter hook input" \
		"priority 0; udp sport $2 drop; }" &&
	ip netns exec "$ns2" nft "add table ip pktgen_sink;" \
		"add chain ip pktgen_sink in { type filter hook input" \
		"priority 0; udp dport $2 drop; }"
}

# pktgen_flows NS DEV MAC SRC DST SPORT NSPORT DPORT NDPORT N: N UDP
# datagrams from SRC to DST out of DEV of netns NS, to MAC, with source
# ports counting through SPORT.. (NSPORT of them) and destination ports
# through DPORT.. (NDPORT): N distinct flows when NSPORT and NDPORT are
# coprime and N <= NSPORT * NDPORT. pktgen waits while the peer's ring
# is full, so none is dropped on the way. N=0: until stopped;
# PKTGEN_DELAY: nanoseconds between datagrams (0).
pktgen_flows() {
	local ns=$1 dev=$2 pg=/proc/net/pktgen

	printf '%s\n' "count ${10}" "pkt_size 60" "delay ${PKTGEN_DELAY:-0}" "clone_skb 0" \
		"dst_mac $3" "src_min $4" "src_max $4" "dst $5" \
		"udp_src_min $6" "udp_src_max $(($6 + $7))" \
		"udp_dst_min $8" "udp_dst_max $(($8 + $9))" > "$tmp/pktgen.$ns"
	ip netns exec "$ns" sh -c "
		echo rem_device_all > $pg/kpktgend_0 &&
		echo 'add_device $dev' > $pg/kpktgend_0 || exit 1
		while read -r c; do echo \"\$c\" > $pg/$dev || exit 1; done
		echo start > $pg/pgctrl && grep -q '^Result: OK' $pg/$dev" \
		< "$tmp/pktgen.$ns"
}

# Kernel CPU time (system, irq, softirq) of all CPUs so far, in ms.
kernel_cpu_ms() {
	awk -v hz="$(getconf CLK_TCK)" \
		'/^cpu / { printf "%d\n", ($4 + $7 + $8) * 1000 / hz }' /proc/stat
}

mem_kb() {
	awk '/^MemAvailable:/ { print $2 }' /proc/meminfo
}

# rate_latency: from the trace of a rate run, the offload requests of the
# flows and the answers that installed their original direction, paired
# by tuple: "flows rate p50_us p99_us" (rate: flows per second from the
# first request to the last answer).
rate_latency() {
	local n first last p50 p99

	awk '
	function ts() {
		for (i = 1; i <= NF; i++) if ($i ~ /^[0-9]+\.[0-9]+:$/) return $i + 0
	}
	function key() {
		k = ""
		for (i = 1; i <= NF; i++) if ($i ~ /^(src|dst)=/) k = k $i
		return k
	}
	/nf_flowtable_offload_request:/ { k = key(); if (!(k in req)) req[k] = ts(); next }
	/nf_flowtable_offload_add:/ { k = key(); if (!(k in done)) done[k] = ts() }
	END {
		first = -1
		for (k in done) {
			if (!(k in req)) continue
			printf "%d\n", (done[k] - req[k]) * 1000000
			if (first < 0 || req[k] < first) first = req[k]
			if (done[k] > last) last = done[k]
		}
		printf "first %.6f %.6f\n", first, last > "/dev/stderr"
	}' 2> "$tmp/rate.span" | sort -n > "$tmp/rate.lat"
	n=$(wc -l < "$tmp/rate.lat")
	read -r _ first last < "$tmp/rate.span"
	if [ "$n" -eq 0 ]; then
		echo "0 0 0 0"
		return
	fi
	p50=$(sed -n "$(( (n - 1) * 50 / 100 + 1 ))p" "$tmp/rate.lat")
	p99=$(sed -n "$(( (n - 1) * 99 / 100 + 1 ))p" "$tmp/rate.lat")
	echo "$n $(awk -v n="$n" -v f="$first" -v l="$last" \
		'BEGIN { printf "%d", (l > f) ? n / (l - f) : 0 }') $p50 $p99"
}

# One rate run of N flows from host 1 (10.0.1.99, source ports from
# 10000) to host 2 (10.0.2.99, destination ports from 6000): host 1 sends
# a datagram on each (conntrack entries in the router), host 2 answers
# each (the router adds the flows to the flowtable: the requests under
# test), both hosts drop what reaches them. The flows then idle in
# hardware under a UDP flowtable timeout of RATE_TMO s, so that the core
# polls each one's counters at every gc pass once RATE_TMO / 10 s have
# passed.
rate_run() {
	local n=$1 nd=1 nsp port=6000 ports mac0 mac1 t0 cpu0 polls0 mem0 mem1
	local inst=$TRACE/instances/nft_flowtable_hw_offload_rate_$$ ev
	local flows=0 rate p50 p99 cpu icpu polls ok=1 RATE_TMO=300 RATE_WIN=10

	# Source ports 10000-60000 at most: more flows take more destination
	# ports, and an odd count of source ports then keeps them distinct.
	while [ $(( (n + nd - 1) / nd )) -gt 50000 ]; do nd=$((nd + 1)); done
	nsp=$(( (n + nd - 1) / nd ))
	[ $nd -gt 1 ] && [ $((nsp % 2)) = 0 ] && nsp=$((nsp + 1))
	mac0=$(ip -net "$nsr" -br link show "$rp0" | awk '{ print $3 }')
	mac1=$(ip -net "$nsr" -br link show "$rp1" | awk '{ print $3 }')
	ports=$port
	[ $nd -gt 1 ] && ports=$port-$((port + nd - 1))
	pktgen_sink add "$ports"
	# Conntrack must not drop the first flows before their answers come,
	# however long sending them takes (a debug kernel takes minutes).
	ip netns exec "$nsr" sysctl -qw net.netfilter.nf_flowtable_udp_timeout=$RATE_TMO \
		net.netfilter.nf_conntrack_udp_timeout=$RATE_TMO

	ev=$inst/events/nf_flowtable
	mkdir "$inst" &&
	echo 65536 > "$inst/buffer_size_kb" &&
	echo 'cmd == 0' > "$ev/nf_flowtable_offload_request/filter" &&
	echo 'accepted > 0 && dir == 0' > "$ev/nf_flowtable_offload_add/filter" &&
	echo 1 > "$ev/nf_flowtable_offload_request/enable" &&
	echo 1 > "$ev/nf_flowtable_offload_add/enable" || ok=0

	mem0=$(mem_kb)
	cpu0=$(kernel_cpu_ms)
	t0=$(date +%s%N)
	pktgen_flows "$ns1" "$h1" "$mac0" 10.0.1.99 10.0.2.99 10000 $nsp $port $nd $n &&
	pktgen_flows "$ns2" "$h2" "$mac1" 10.0.2.99 10.0.1.99 $port $nd 10000 $nsp $n || ok=0
	echo "# rate: $n flows generated in $(( ($(date +%s%N) - t0) / 1000000 )) ms"
	# A read a second: each costs a process, CPU taken from the flows
	# being measured.
	loopy_wait "sleep 1" $(( (60 + n / 100) * 1000 )) \
		until_counter_is ">= $n" ft_stat hw_flows >/dev/null || ok=0
	icpu=$(( $(kernel_cpu_ms) - cpu0 ))
	mem1=$(mem_kb)
	if [ -d "$inst" ]; then
		echo 0 > "$inst/tracing_on"
		read -r flows rate p50 p99 < <(rate_latency < "$inst/trace")
		rmdir "$inst"
	fi
	[ "$flows" -eq "$n" ] || ok=0
	check "rate: $n flows in hardware, each traced" [ $ok = 1 ]

	# Every flow idle in hardware for RATE_TMO / 10 s: polled at each gc
	# pass from then on.
	sleep $(( RATE_TMO / 10 + 2 ))
	cpu0=$(kernel_cpu_ms)
	polls0=$(ft_stat hw_stats)
	sleep $RATE_WIN
	cpu=$(( $(kernel_cpu_ms) - cpu0 ))
	polls=$(( $(ft_stat hw_stats) - polls0 ))
	echo "# rate: flows=$n insert_per_s=$rate p50_us=$p50 p99_us=$p99" \
	     "insert_cpu_ms=$icpu mem_per_flow_b=$(( (mem0 - mem1) * 1024 / n ))" \
	     "polls=$polls poll_cpu_ms=$cpu poll_secs=$RATE_WIN"
	check "rate: $n flows polled" [ "$polls" -gt 0 ]

	pktgen_sink delete
	ip netns exec "$nsr" conntrack -F 2>/dev/null
	ft_wait_count $((60 + n / 100)) 0
	ip netns exec "$nsr" sysctl -qw net.netfilter.nf_flowtable_udp_timeout=30 \
		net.netfilter.nf_conntrack_udp_timeout=30
}

case_rate() {
	local n size max=100000

	modprobe -q pktgen
	if [ ! -d /proc/net/pktgen ]; then
		ktap_test_skip "rate: no pktgen"
		return
	fi
	for n in $RATE_FLOWS; do [ "$n" -gt $max ] && max=$n; done
	kill_flows
	topo plain
	size=$(ft_size)
	if ! router_resize $((2 * max)) || ! topo plain || ! load_ruleset none; then
		fail "rate: router device resized"
		return
	fi
	[ "$(cat /proc/sys/net/netfilter/nf_conntrack_max)" -ge $((2 * max)) ] ||
		echo $((2 * max)) > /proc/sys/net/netfilter/nf_conntrack_max
	for n in $RATE_FLOWS; do
		rate_run "$n"
	done
	router_resize "$size" ||
		ktap_exit_fail_msg "cannot restore the router's device"
	topo plain
	kill_flows
}

# The "bench" family: CAP_K flows wait CAP_WAIT s for a full table; the
# figures, without a bound, for a benchmark that compares kernels.
case_bench() {
	local port=$((5900 + RANDOM % 100)) n2=$((2 * CAP_N)) size calls add
	local us works CAP_K=32

	kill_flows
	topo plain
	size=$(ft_size)
	if ! router_resize $n2 || ! topo plain || ! load_ruleset none; then
		fail "bench: router device resized"
		return
	fi
	if steady_start $CAP_N 10.0.2.99 $port && ft_wait_count 60 $n2 &&
	   steady_open $CAP_K; then
		pass "bench: table of $n2 full"
		sleep 5
		echo 0 > "$FT_DIR/replace_calls"
		add=$(ft_stat hw_add)
		work_trace_start
		sleep $CAP_WAIT
		read -r us works < <(work_trace_stop)
		calls=$(cat "$FT_DIR/replace_calls")
		add=$(( $(ft_stat hw_add) - add ))
		echo "# bench: waiting=$CAP_K secs=$CAP_WAIT calls=$calls" \
		     "add_requests=$add works=$works worker_us=$us"
	else
		fail "bench: table of $n2 full"
	fi
	steady_end
	ip netns exec "$nsr" conntrack -D -p udp --orig-port-dst $port >/dev/null 2>&1
	ft_wait_count 30 0
	router_resize "$size" ||
		ktap_exit_fail_msg "cannot restore the router's device"
	topo plain
	kill_flows
}

case_capacity() {
	local size

	if [ ! -r /proc/net/stat/nf_flowtable ]; then
		ktap_test_skip "capacity: no /proc/net/stat/nf_flowtable"
		return
	fi
	if ! devlink -V >/dev/null 2>&1; then
		ktap_test_skip "capacity: no devlink tool"
		return
	fi
	kill_flows
	topo plain
	load_ruleset none
	capacity_eexist
	capacity_refused

	size=$(ft_size)
	if router_resize $((2 * CAP_N)) && topo plain && load_ruleset none; then
		capacity_full
	else
		fail "capacity: router device resized"
	fi
	router_resize "$size" ||
		ktap_exit_fail_msg "cannot restore the router's device"
	topo plain
	load_ruleset none
	kill_flows
}

# stress[:SECONDS[:FLOWS[:PPS]]]: FLOWS (2000) UDP flows with traffic both
# ways (pktgen, PPS datagrams a second from each host: 4000) for SECONDS
# (60) while the router's engine fails STRESS_PCT percent of its commands
# and STRESS_BIND_PCT percent of its binds, and meanwhile router ports go
# down and up, router port 1 is deleted and re-created, the flowtable is
# deleted and re-added, the ruleset is flushed and loaded again,
# conntrack is flushed and, half-way, the router's netdevsim device is
# deleted and re-created. Then, faults still on, the engine must hold the
# two rules of every flow the core counts in hardware and none once
# conntrack is flushed, and the kernel must not be tainted. The runner
# checks the kernel log (lockdep, KASAN, kmemleak, reference trackers).
# First, without the churn, the retry of a delete the engine failed
# (stress_del_retry).
STRESS_SECS=60
STRESS_FLOWS=2000
STRESS_PPS=4000
STRESS_PCT=5
STRESS_BIND_PCT=20
STRESS_PORT=7000
# Fault attributes count down from this: what is left tells how many
# failures were injected.
STRESS_TIMES=100000000

# stress_faults PCT BIND_PCT: PCT percent of the router engine's commands
# and BIND_PCT percent of its binds fail, without a stack dump each.
stress_faults() {
	local a pct=$1

	for a in "$FT_DIR/fault" "$FT_DIR/fault_bind"; do
		echo 0 > "$a/verbose" && echo 1 > "$a/interval" &&
		echo "$STRESS_TIMES" > "$a/times" &&
		echo "$pct" > "$a/probability" || return 1
		pct=$2
	done
}

# Failures injected since stress_faults, by attribute: "commands binds".
stress_faults_count() {
	echo $((STRESS_TIMES - $(cat "$FT_DIR/fault/times"))) \
	     $((STRESS_TIMES - $(cat "$FT_DIR/fault_bind/times")))
}

# One line in $tmp/stress.$1 per event.
stress_ev() {
	echo "${2:-1}" >> "$tmp/stress.$1"
}

stress_evsum() {
	awk '{ s += $1 } END { print s + 0 }' "$tmp/stress.$1" 2>/dev/null ||
		echo 0
}

# stress_port N: (re-)create router port N (0: the device, with its first
# port) with the name, MAC address, IPv4 address and cable it had. While
# binds fail, giving it the name of a flowtable device can fail (the
# netdev notifier refuses the rename): try again.
stress_port() {
	local n=$1 dev name mac addr host hdev tries=0
	local nsim=/sys/bus/netdevsim/devices/netdevsim$IDR

	if [ "$n" = 0 ]; then
		name=$rp0 mac=$STRESS_MAC0 addr=10.0.1.1/24 host=$ns1 hdev=$h1
		echo "$IDR 1" | ip netns exec "$nsr" \
			tee /sys/bus/netdevsim/new_device >/dev/null || return 1
		stress_faults "$STRESS_PCT" "$STRESS_BIND_PCT" || return 1
	else
		name=$rp1 mac=$STRESS_MAC1 addr=10.0.2.1/24 host=$ns2 hdev=$h2
		echo "$n" | ip netns exec "$nsr" tee $nsim/new_port >/dev/null ||
			return 1
	fi
	dev=$(ip netns exec "$nsr" ls $nsim/net | grep -v '^nsim')
	ip -net "$nsr" link set "$dev" address "$mac" || return 1
	until ip -net "$nsr" link set "$dev" name "$name" 2>/dev/null; do
		stress_ev rename_refused
		tries=$((tries + 1))
		[ $tries -lt 100 ] || return 1
		sleep 0.1
	done
	ip -net "$nsr" link set "$name" up &&
	ip -net "$nsr" addr add $addr dev "$name" &&
	nsim_link "$nsr" "$name" "$host" "$hdev"
}

# The router's device goes away with its engine: count the engine's
# injected failures first.
stress_dev_del() {
	local cmds binds

	read -r cmds binds < <(stress_faults_count)
	stress_ev faults "$cmds"
	stress_ev bind_faults "$binds"
	echo "$IDR" > /sys/bus/netdevsim/del_device
}

# The actions, each run under a lock with the others that add or remove
# router ports.
stress_flap() {
	local dev=$rp0

	[ $((RANDOM % 2)) = 0 ] && dev=$rp1
	{
		flock 9
		ip -net "$nsr" link set "$dev" down && sleep 0.2 &&
		ip -net "$nsr" link set "$dev" up
	} 9> "$tmp/stress.lock"
}

stress_port_cycle() {
	{
		flock 9
		del_port && stress_port 1
	} 9> "$tmp/stress.lock"
}

stress_dev_cycle() {
	{
		flock 9
		stress_dev_del && stress_port 0 && stress_port 1
	} 9> "$tmp/stress.lock"
}

# Delete the flowtable and add it back, or flush the ruleset and load it
# again. While binds fail either may be refused: nothing is left half
# done, and the next round starts from what is there.
stress_nft() {
	if [ $((RANDOM % 2)) = 0 ]; then
		stress_ev ruleset_reload
		load_ruleset none >/dev/null 2>&1
		return
	fi
	stress_ev flowtable_readd
	nft_router -f - >/dev/null 2>&1 <<EOF || return 1
flush chain inet filter forward
delete flowtable inet filter f
EOF
	nft_router -f - >/dev/null 2>&1 <<EOF
add flowtable inet filter f { hook ingress priority 0; devices = { $rp0, $rp1 }; flags offload; }
add rule inet filter forward meta l4proto { tcp, udp } flow add @f
add rule inet filter forward counter name routed
EOF
}

stress_ct_flush() {
	ip netns exec "$nsr" conntrack -F >/dev/null 2>&1
}

# stress_loop NAME SECONDS ACTION: ACTION every SECONDS until the end of
# the run; counts NAME and NAME_failed.
stress_loop() {
	local name=$1 period=$2

	while [ "$(date +%s)" -lt "$STRESS_END" ]; do
		if $3; then stress_ev "$name"; else stress_ev "${name}_failed"; fi
		sleep "$period"
	done
}

# pktgen_flows until stress_traffic_stop, at STRESS_PPS datagrams a second;
# pktgen stops when its port loses the carrier (its peer port is deleted):
# start it again.
stress_pktgen() {
	while [ ! -e "$tmp/stress.stop" ]; do
		PKTGEN_DELAY=$((1000000000 / STRESS_PPS)) \
			pktgen_flows "$@" >/dev/null 2>&1
		sleep 0.5
	done
}

# Both hosts send, every flow a datagram each way every FLOWS/PPS seconds.
stress_traffic() {
	local n=$STRESS_FLOWS

	stress_pktgen "$ns1" "$h1" "$STRESS_MAC0" 10.0.1.99 10.0.2.99 \
		10000 $n $STRESS_PORT 1 0 &
	STRESS_PG1=$!
	stress_pktgen "$ns2" "$h2" "$STRESS_MAC1" 10.0.2.99 10.0.1.99 \
		$STRESS_PORT 1 10000 $n 0 &
	STRESS_PG2=$!
}

# A loop may start pktgen again between a look at the stop file and the
# stop: stop until both loops have seen the file.
stress_traffic_stop() {
	local ns tries=0

	touch "$tmp/stress.stop"
	while kill -0 "$STRESS_PG1" 2>/dev/null ||
	      kill -0 "$STRESS_PG2" 2>/dev/null; do
		for ns in "$ns1" "$ns2"; do
			ip netns exec "$ns" sh -c 'echo stop > /proc/net/pktgen/pgctrl'
		done
		tries=$((tries + 1))
		[ $tries -lt 300 ] || return 1
		sleep 0.2
	done
	wait "$STRESS_PG1" "$STRESS_PG2" 2>/dev/null
	return 0
}

# Flows the router holds in hardware, as conntrack shows them.
stress_hw_ct() {
	ip netns exec "$nsr" conntrack -L -p udp 2>/dev/null | grep -c HW_OFFLOAD
}

# Whether every flow is in hardware, by the core's count and conntrack's,
# and the engine holds two rules for each; prints "flows rules conntrack".
stress_settled() {
	local hw rules ct

	hw=$(ft_stat hw_flows) && rules=$(ft_count) && ct=$(stress_hw_ct) ||
		return 1
	echo "$hw $rules $ct"
	[ "$hw" -eq "$STRESS_FLOWS" ] && [ "$rules" -eq $((2 * hw)) ] &&
		[ "$ct" -eq "$hw" ]
}

# Why the flows did not settle: the rules by ingress port (one a
# direction), how the counters move, a few flows conntrack has out of
# hardware.
stress_unsettled() {
	local c d=""

	ft_rules | awk '{ n[$2]++ } END {
		for (p in n) printf "# stress: rules in on %s: %d\n", p, n[p] }'
	ft_stat_mark
	sleep 10
	for c in hw_add hw_add_ok hw_add_err hw_backoff hw_stats \
		 hw_stats_err; do
		d="$d $c=$(ft_stat_delta $c)"
	done
	echo "# stress: in 10 s:$d;" \
	     "pending: $(ft_stat wq_add wq_del wq_stats)"
	ip netns exec "$nsr" conntrack -L -p udp 2>/dev/null |
		grep -v HW_OFFLOAD | head -n 3 |
		sed 's/^/# stress: out of hardware: /'
}

# A delete the engine fails is asked again at the gc's next passes, up to
# 8 attempts: the rules go once the engine lets them; if it never does, the
# core gives up and the engine frees them when it is unbound.
# One flow in hardware, then the engine fails deletes and conntrack is
# flushed; counters marked before.
del_retry_start() {
	kill_flows
	if ! ft_wait_count 30 0 || ! offload_idle_flow; then
		fail "delete retry: one flow offloaded"
		return 1
	fi
	ft_stat_mark
	ft_fault fail_del 1
	# In the background: on a debug kernel the conntrack process exits
	# seconds after its flush, and the gc asks again at each pass.
	ip netns exec "$nsr" conntrack -F >/dev/null 2>&1 &
	DEL_RETRY_FLUSH=$!
}

del_retry_run() {
	local stale0 st rules flows gone err tries=0

	load_ruleset none
	del_retry_start || return
	# Read after a delete failed, before deletes are let through again;
	# the failures counted at the end prove that this was before the 8th
	# (the core gives up then). Polled while the flush runs.
	until read -r err flows < <(ft_stat hw_del_err hw_flows) &&
	      [ $((err - STAT0[hw_del_err])) -ge 1 ]; do
		[ $((tries += 1)) -le 300 ] || break
		sleep 0.1
	done
	rules=$(ft_count) flows=$((flows - STAT0[hw_flows]))
	ft_fault fail_del 0
	ft_wait_count 30 0
	gone=$?
	wait "$DEL_RETRY_FLUSH"
	err=$(ft_stat_delta hw_del_err)
	st="rules $rules, hw_flows $flows; hw_del_err $err, hw_del $(ft_stat_delta hw_del)"
	check "delete retry: rules kept and counted while the engine fails ($st)" \
		eval '[ "$rules" -eq 2 ] && [ "$flows" -eq 0 ] &&
		      [ "$err" -ge 1 ] && [ "$err" -lt 8 ]'
	check "delete retry: rules gone at the next attempt the engine lets" \
		eval '[ $gone -eq 0 ] && ft_stat_is hw_del $((err + 1))'
	check "delete retry: the flow is no longer counted" ft_stat_is hw_flows -1

	del_retry_start || return
	wait "$DEL_RETRY_FLUSH"
	slowwait 60 until_counter_is ">= 8" ft_stat_delta hw_del >/dev/null
	sleep 3
	st="hw_del $(ft_stat_delta hw_del), hw_del_err $(ft_stat_delta hw_del_err)"
	check "delete retry: 8 attempts, all failed ($st)" \
		eval 'ft_stat_is hw_del 8 && ft_stat_is hw_del_err 8'
	check "delete retry: given up, the flow is no longer counted" \
		ft_stat_is hw_flows -1
	check "delete retry: the engine still holds the rules" [ "$(ft_count)" -eq 2 ]
	ft_fault fail_del 0
	stale0=$(cat "$FT_STALE")
	load_ruleset none
	check "delete retry: the engine frees them at unbind" \
		eval '[ "$(ft_count)" -eq 0 ] && [ "$(cat "$FT_STALE")" -eq $((stale0 + 2)) ]'
}

# The idle flow must not expire before the engine fails its delete: on a
# debug kernel setting it up takes longer than the default 30 s.
stress_del_retry() {
	local tmo

	tmo=$(ip netns exec "$nsr" sysctl -n net.netfilter.nf_flowtable_tcp_timeout)
	ip netns exec "$nsr" sysctl -qw net.netfilter.nf_flowtable_tcp_timeout=300
	del_retry_run
	ip netns exec "$nsr" sysctl -qw net.netfilter.nf_flowtable_tcp_timeout="$tmo"
}

# What the last round of churn left out, put back: the router's device,
# its port 1, the ruleset (binds may fail: try again).
stress_repair() {
	local tries

	if ! ip -net "$nsr" link show "$rp0" >/dev/null 2>&1; then
		cleanup_netdevsim "$IDR"
		stress_port 0 && stress_port 1 || return 1
	elif ! ip -net "$nsr" link show "$rp1" >/dev/null 2>&1; then
		del_port 2>/dev/null
		stress_port 1 || return 1
	fi
	ip -net "$nsr" link set "$rp0" up && ip -net "$nsr" link set "$rp1" up ||
		return 1
	nft_router list flowtable inet filter f >/dev/null 2>&1 && return
	for tries in 1 2 3 4 5 6 7 8 9 10; do
		load_ruleset none >/dev/null 2>&1 && return
	done
	return 1
}

case_stress() {
	local secs=$STRESS_SECS t0 taint pids="" cmds binds hw rules seen a

	if [ ! -d "$FT_DIR/fault" ]; then
		ktap_test_skip "stress: no fault injection (CONFIG_FAULT_INJECTION_DEBUG_FS)"
		return
	fi
	if ! modprobe -q pktgen || ! [ -d /proc/net/pktgen ]; then
		ktap_test_skip "stress: no pktgen (CONFIG_NET_PKTGEN)"
		return
	fi
	if ! flock -V >/dev/null 2>&1; then
		ktap_test_skip "stress: no flock (util-linux)"
		return
	fi
	a="$STRESS_SECS:$STRESS_FLOWS:$STRESS_PPS"
	if ! [[ "$a" =~ ^([1-9][0-9]*:){2}[1-9][0-9]*$ ]]; then
		fail "stress: seconds, flows, datagrams a second: $a"
		return
	fi
	if [ $((2 * STRESS_FLOWS)) -gt "$(ft_size)" ] ||
	   [ $((10000 + STRESS_FLOWS)) -gt 65535 ]; then
		fail "stress: $STRESS_FLOWS flows do not fit the engine's table"
		return
	fi
	read -r taint < /proc/sys/kernel/tainted
	rm -f "$tmp"/stress.*
	topo plain
	stress_del_retry
	kill_flows
	load_ruleset none
	STRESS_MAC0=$(ip -net "$nsr" -br link show "$rp0" | awk '{ print $3 }')
	STRESS_MAC1=$(ip -net "$nsr" -br link show "$rp1" | awk '{ print $3 }')
	pktgen_sink add $STRESS_PORT
	stress_faults "$STRESS_PCT" "$STRESS_BIND_PCT" ||
		{ fail "stress: fault injection set up"; return; }
	stress_traffic

	t0=$(date +%s)
	STRESS_END=$((t0 + secs))
	stress_loop flap 2 stress_flap & pids="$pids $!"
	stress_loop port_recreate 5 stress_port_cycle & pids="$pids $!"
	stress_loop nft 3 stress_nft & pids="$pids $!"
	stress_loop ct_flush 4 stress_ct_flush & pids="$pids $!"
	sleep $((secs / 2))
	if stress_dev_cycle; then stress_ev dev_recreate; else stress_ev dev_recreate_failed; fi
	wait $pids

	# Faults still on: what the last round left, repaired, then the
	# flows come back into hardware with the traffic, and go with a
	# conntrack flush whose deletes fail at times too.
	if ! stress_repair; then
		stress_traffic_stop
		ktap_exit_fail_msg "stress: cannot restore the router"
	fi
	pass "stress: router ports and ruleset after the run"
	if seen=$(loopy_wait "sleep 1" $(( (120 + STRESS_FLOWS / 5) * 1000 )) \
			     stress_settled); then
		pass "stress: $STRESS_FLOWS flows in hardware, two rules each"
	else
		fail "stress: flows, rules, conntrack entries: $seen (want $STRESS_FLOWS)"
		stress_unsettled
	fi
	read -r hw rules a <<< "$seen"

	check "stress: pktgen stopped" stress_traffic_stop
	stress_ct_flush
	if slowwait $((60 + STRESS_FLOWS / 20)) sh -c "[ \$(wc -l < $FT_RULES) -eq 0 ]"; then
		pass "stress: no rule left after the conntrack flush"
	else
		fail "stress: $(ft_count) rules left after the conntrack flush"
		ft_rules | head -n 5 | sed 's/^/# /'
	fi
	if slowwait 30 until_counter_is "== 0" ft_stat hw_flows >/dev/null; then
		pass "stress: the core counts no flow in hardware"
	else
		fail "stress: the core counts $(ft_stat hw_flows) flows in hardware"
	fi

	read -r cmds binds < <(stress_faults_count)
	stress_ev faults "$cmds"
	stress_ev bind_faults "$binds"
	stress_faults 0 0
	echo "# stress: secs=$secs flows=$STRESS_FLOWS in_hw=$hw rules=$rules" \
	     "faults=$(stress_evsum faults)" \
	     "bind_faults=$(stress_evsum bind_faults)" \
	     "rename_refused=$(stress_evsum rename_refused)" \
	     "flaps=$(stress_evsum flap)/$(stress_evsum flap_failed)" \
	     "port_recreate=$(stress_evsum port_recreate)/$(stress_evsum port_recreate_failed)" \
	     "dev_recreate=$(stress_evsum dev_recreate)/$(stress_evsum dev_recreate_failed)" \
	     "flowtable_readd=$(stress_evsum flowtable_readd)" \
	     "ruleset_reload=$(stress_evsum ruleset_reload)" \
	     "nft_refused=$(stress_evsum nft_failed)" \
	     "ct_flush=$(stress_evsum ct_flush)" \
	     "hw_add=$(ft_stat hw_add) hw_add_err=$(ft_stat hw_add_err)" \
	     "hw_del=$(ft_stat hw_del) hw_del_err=$(ft_stat hw_del_err)" \
	     "hw_stats_err=$(ft_stat hw_stats_err)"
	check "stress: faults were injected" [ "$(stress_evsum faults)" -gt 0 ]
	check "stress: kernel not tainted" [ "$(cat /proc/sys/kernel/tainted)" = "$taint" ]
	pktgen_sink delete
	# The engine freed rules at the unbinds of the churn and counts them
	# (stale_on_unbind), which the unbind family reads: leave it a fresh
	# engine.
	{ stress_dev_del && stress_port 0 && stress_port 1 &&
	  stress_faults 0 0; } >/dev/null ||
		ktap_exit_fail_msg "stress: cannot restore the router"
	topo plain
}

RATE_FLOWS="10000 100000"
for f in $FAMILIES; do
	case $f in
	nat|encap|teardown|fallback|scale|observe|capacity|stress|bench|rate|unbind) ;;
	rate:[1-9]*) RATE_FLOWS=${f#rate:} RATE_FLOWS=${RATE_FLOWS//,/ } ;;
	stress:[1-9]*)
		IFS=: read -r STRESS_SECS n pps <<< "${f#stress:}"
		STRESS_FLOWS=${n:-$STRESS_FLOWS} STRESS_PPS=${pps:-$STRESS_PPS} ;;
	*) ktap_exit_fail_msg "unknown case family $f" ;;
	esac
done
# unbind deletes a router port and the router: it runs last.
for f in $FAMILIES; do
	[ "$f" = unbind ] || "case_${f%%:*}"
done
case " $FAMILIES " in *" unbind "*) case_unbind ;; esac

ktap_set_plan $((KTAP_TESTNO - 1))
ktap_finished
