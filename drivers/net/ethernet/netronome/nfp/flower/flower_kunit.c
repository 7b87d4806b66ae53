// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* KUnit tests for the parts of TC Flower offload that need no firmware. */

#include <kunit/test.h>
#include <linux/etherdevice.h>
#include <linux/ipv6.h>
#include <linux/netdevice.h>
#include <linux/tc_act/tc_csum.h>
#include <linux/unaligned.h>
#include <net/dst_metadata.h>
#include <net/flow_offload.h>
#include <net/ip.h>
#include <net/netfilter/nf_flow_table.h>

#include "cmsg.h"
#include "main.h"
#include "../nfp_net_repr.h"

#define NFP_FL_TEST_MASK_LEN	8

static struct nfp_fl_payload *nfp_fl_test_payload(struct kunit *test)
{
	struct nfp_fl_payload *flow;

	flow = kunit_kzalloc(test, sizeof(*flow), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, flow);
	flow->mask_data = kunit_kzalloc(test, NFP_FL_TEST_MASK_LEN, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, flow->mask_data);
	flow->unmasked_data = kunit_kzalloc(test, NFP_FL_TEST_MASK_LEN,
					    GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, flow->unmasked_data);
	flow->meta.mask_len = NFP_FL_TEST_MASK_LEN;

	return flow;
}

struct nfp_fl_test_meta {
	struct nfp_app app;
	struct nfp_flower_priv priv;
	/* The flows' ingress device */
	struct net_device *netdev;
	struct nfp_fl_payload installed;
};

static void nfp_fl_test_meta_exit(void *data)
{
	struct nfp_fl_test_meta *m = data;

	rhashtable_remove_fast(&m->priv.flow_table, &m->installed.fl_node,
			       nfp_flower_table_params);
	nfp_flower_metadata_cleanup(&m->app);
}

/* The flow table of @app with one flow installed: @cookie on @netdev. */
static struct nfp_fl_test_meta *
nfp_fl_test_meta_init(struct kunit *test, struct net_device *netdev,
		      unsigned long cookie)
{
	struct nfp_fl_test_meta *m;

	m = kunit_kzalloc(test, sizeof(*m), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, m);
	m->netdev = netdev;
	m->app.priv = &m->priv;
	mutex_init(&m->priv.nfp_fl_lock);
	/* A context table of 4 entries in one memory unit, as
	 * nfp_flower_init() sets it up from the firmware's values.
	 */
	m->priv.stats_ring_size = 4;
	m->priv.total_mem_units = 1;
	KUNIT_ASSERT_EQ(test, nfp_flower_metadata_init(&m->app, 4, 1), 0);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test,
							nfp_fl_test_meta_exit,
							m), 0);

	m->installed.tc_flower_cookie = cookie;
	m->installed.ingress_dev = m->netdev;
	KUNIT_ASSERT_EQ(test, rhashtable_insert_fast(&m->priv.flow_table,
						     &m->installed.fl_node,
						     nfp_flower_table_params),
			0);

	return m;
}

/* The duplicate check and the firmware's host_cookie use the whole
 * cookie: tc's cookies are kernel addresses.
 */
static void nfp_fl_test_metadata_cookie(struct kunit *test)
{
	const unsigned long cookie = (unsigned long)test;
	struct nfp_fl_payload *dup, *other;
	struct nfp_fl_test_meta *m;
	struct net_device *netdev;
	int err;

	if (BITS_PER_LONG < 64)
		kunit_skip(test, "cookies are 32 bits wide here");

	/* Only compared as the flows' ingress device, never used. */
	netdev = kunit_kzalloc(test, sizeof(*netdev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, netdev);
	m = nfp_fl_test_meta_init(test, netdev, cookie);

	dup = nfp_fl_test_payload(test);
	err = nfp_compile_flow_metadata(&m->app, cookie, dup, netdev, NULL);
	KUNIT_EXPECT_EQ(test, err, -EEXIST);
	if (!err)
		nfp_modify_flow_metadata(&m->app, dup);

	other = nfp_fl_test_payload(test);
	err = nfp_compile_flow_metadata(&m->app, cookie + 1, other, netdev,
					NULL);
	KUNIT_EXPECT_EQ(test, err, 0);
	KUNIT_EXPECT_EQ(test, be64_to_cpu(other->meta.host_cookie),
			(u64)(cookie + 1));
	if (!err)
		nfp_modify_flow_metadata(&m->app, other);
}

/* A run of mangles ends at the last action of the list, whatever lies
 * beyond it: entries[2] exists but is not part of a list of two.
 */
static void nfp_fl_test_mangle_end(struct kunit *test)
{
	struct flow_action *act;
	struct flow_rule *rule;

	rule = kunit_kzalloc(test, struct_size(rule, action.entries, 3),
			     GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, rule);
	act = &rule->action;
	act->num_entries = 3;
	act->entries[0].id = FLOW_ACTION_MANGLE;
	act->entries[1].id = FLOW_ACTION_MANGLE;
	act->entries[2].id = FLOW_ACTION_MANGLE;
	act->num_entries = 2;
	KUNIT_EXPECT_FALSE(test, nfp_fl_check_mangle_end(act, 0));
	KUNIT_EXPECT_TRUE(test, nfp_fl_check_mangle_end(act, 1));

	act->entries[1].id = FLOW_ACTION_REDIRECT;
	KUNIT_EXPECT_TRUE(test, nfp_fl_check_mangle_end(act, 0));
	KUNIT_EXPECT_FALSE(test, nfp_fl_check_mangle_end(act, 1));
}

static struct kunit_case nfp_fl_test_cases[] = {
	KUNIT_CASE(nfp_fl_test_metadata_cookie),
	KUNIT_CASE(nfp_fl_test_mangle_end),
	{}
};

static struct kunit_suite nfp_fl_test_suite = {
	.name = "nfp_flower",
	.test_cases = nfp_fl_test_cases,
};

/* Flowtable offload (TC_SETUP_FT): rules built as nf_flow_table_offload.c
 * builds them (nf_flow_rule_match() and the flow_offload_*() action
 * helpers; keep them in step), through the FT callback's checks and the
 * flower compilers, down to the firmware's key and action buffers.
 */
#define NFP_FT_TEST_ACTS	24	/* NF_FLOW_RULE_ACTION_MAX */
#define NFP_FT_TEST_IN_PORT	0x1235
#define NFP_FT_TEST_OUT_PORT	0x1234

struct nfp_ft_test {
	struct nfp_flower_priv priv;
	struct nfp_app app;
	struct net_device *in_dev;	/* representors */
	struct net_device *out_dev;
	/* The flower action compiler asks the ingress and egress
	 * representors for their switch ID, which needs a card: compile
	 * actions as from a device that is not a representor.
	 */
	struct net_device *plain_dev;
	struct nf_flow_match match;
	struct flow_rule *rule;
	struct nfp_fl_payload pay;
	struct netlink_ext_ack extack;
};

static const u8 nfp_ft_smac[ETH_ALEN] = { 0x02, 0x11, 0x22, 0x33, 0x44, 0x55 };
static const u8 nfp_ft_dmac[ETH_ALEN] = { 0x02, 0xaa, 0xbb, 0xcc, 0xdd, 0xee };

static void nfp_ft_test_free_dev(void *data)
{
	struct net_device *netdev = data;

	if (nfp_netdev_is_nfp_repr(netdev)) {
		struct nfp_repr *repr = netdev_priv(netdev);

		dst_release((struct dst_entry *)repr->dst);
	}
	free_netdev(netdev);
}

static struct net_device *nfp_ft_test_dev(struct kunit *test,
					  struct nfp_app *app, u32 port_id,
					  int ifindex)
{
	struct net_device *netdev;
	struct nfp_repr *repr;

	netdev = alloc_etherdev(sizeof(*repr));
	KUNIT_ASSERT_NOT_NULL(test, netdev);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test,
							nfp_ft_test_free_dev,
							netdev), 0);
	netdev->ifindex = ifindex;
	if (!app)
		return netdev;

	repr = netdev_priv(netdev);
	repr->dst = metadata_dst_alloc(0, METADATA_HW_PORT_MUX, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, repr->dst);
	repr->dst->u.port_info.port_id = port_id;
	repr->netdev = netdev;
	repr->app = app;
	netdev->netdev_ops = &nfp_repr_netdev_ops;
	netdev->features |= NETIF_F_HW_TC;

	return netdev;
}

static void nfp_ft_test_free_rule(void *rule)
{
	kfree(rule);
}

static int nfp_ft_test_init(struct kunit *test)
{
	struct nfp_ft_test *t;

	t = kunit_kzalloc(test, sizeof(*t), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t);
	t->app.priv = &t->priv;
	t->in_dev = nfp_ft_test_dev(test, &t->app, NFP_FT_TEST_IN_PORT, 7);
	t->out_dev = nfp_ft_test_dev(test, &t->app, NFP_FT_TEST_OUT_PORT, 8);
	t->plain_dev = nfp_ft_test_dev(test, NULL, 0, 9);

	t->rule = flow_rule_alloc(NFP_FT_TEST_ACTS);
	KUNIT_ASSERT_NOT_NULL(test, t->rule);
	KUNIT_ASSERT_EQ(test, kunit_add_action_or_reset(test,
							nfp_ft_test_free_rule,
							t->rule), 0);
	t->rule->action.num_entries = 0;
	t->rule->match.dissector = &t->match.dissector;
	t->rule->match.key = &t->match.key;
	t->rule->match.mask = &t->match.mask;

	t->pay.action_data = kunit_kzalloc(test, NFP_FL_MAX_A_SIZ, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->pay.action_data);

	test->priv = t;
	return 0;
}

/* nf_flow_rule_match() of a TCP or UDP flow ingressing on @ifindex */
static void nfp_ft_test_match(struct nfp_ft_test *t, int ifindex, bool ipv6,
			      u8 l4proto)
{
	struct flow_dissector *d = &t->match.dissector;
	struct nf_flow_key *mask = &t->match.mask;
	struct nf_flow_key *key = &t->match.key;

	d->offset[FLOW_DISSECTOR_KEY_META] = offsetof(struct nf_flow_key, meta);
	d->offset[FLOW_DISSECTOR_KEY_CONTROL] =
		offsetof(struct nf_flow_key, control);
	d->offset[FLOW_DISSECTOR_KEY_BASIC] =
		offsetof(struct nf_flow_key, basic);
	d->offset[FLOW_DISSECTOR_KEY_IPV4_ADDRS] =
		offsetof(struct nf_flow_key, ipv4);
	d->offset[FLOW_DISSECTOR_KEY_IPV6_ADDRS] =
		offsetof(struct nf_flow_key, ipv6);
	d->offset[FLOW_DISSECTOR_KEY_TCP] = offsetof(struct nf_flow_key, tcp);
	d->offset[FLOW_DISSECTOR_KEY_PORTS] = offsetof(struct nf_flow_key, tp);

	key->meta.ingress_ifindex = ifindex;
	mask->meta.ingress_ifindex = 0xffffffff;

	if (ipv6) {
		key->control.addr_type = FLOW_DISSECTOR_KEY_IPV6_ADDRS;
		key->basic.n_proto = htons(ETH_P_IPV6);
		ipv6_addr_set(&key->ipv6.src, htonl(0x20010db8), 0, 0, htonl(1));
		ipv6_addr_set(&key->ipv6.dst, htonl(0x20010db8), 0, 0, htonl(2));
		memset(&mask->ipv6, 0xff, sizeof(mask->ipv6));
	} else {
		key->control.addr_type = FLOW_DISSECTOR_KEY_IPV4_ADDRS;
		key->basic.n_proto = htons(ETH_P_IP);
		key->ipv4.src = htonl(0x0a000001);
		key->ipv4.dst = htonl(0xc0a80002);
		mask->ipv4.src = htonl(0xffffffff);
		mask->ipv4.dst = htonl(0xffffffff);
	}
	mask->control.addr_type = 0xffff;
	mask->basic.n_proto = htons(0xffff);
	d->used_keys = BIT_ULL(FLOW_DISSECTOR_KEY_META) |
		       BIT_ULL(FLOW_DISSECTOR_KEY_CONTROL) |
		       BIT_ULL(FLOW_DISSECTOR_KEY_BASIC) |
		       BIT_ULL(FLOW_DISSECTOR_KEY_PORTS) |
		       BIT_ULL(key->control.addr_type);

	if (l4proto == IPPROTO_TCP) {
		key->tcp.flags = 0;
		mask->tcp.flags = cpu_to_be16(be32_to_cpu(TCP_FLAG_RST |
							  TCP_FLAG_FIN) >> 16);
		d->used_keys |= BIT_ULL(FLOW_DISSECTOR_KEY_TCP);
	}
	key->basic.ip_proto = l4proto;
	mask->basic.ip_proto = 0xff;

	key->tp.src = htons(40000);
	key->tp.dst = htons(443);
	mask->tp.src = htons(0xffff);
	mask->tp.dst = htons(0xffff);
}

static struct flow_action_entry *nfp_ft_test_act(struct nfp_ft_test *t,
						 enum flow_action_id id)
{
	struct flow_action *action = &t->rule->action;
	struct flow_action_entry *e;

	e = &action->entries[action->num_entries++];
	e->id = id;

	return e;
}

/* flow_offload_mangle() */
static void nfp_ft_test_mangle(struct nfp_ft_test *t,
			       enum flow_action_mangle_base htype, u32 offset,
			       u32 val, u32 mask)
{
	struct flow_action_entry *e = nfp_ft_test_act(t, FLOW_ACTION_MANGLE);

	e->mangle.htype = htype;
	e->mangle.offset = offset;
	e->mangle.mask = mask;
	e->mangle.val = val;
}

/* flow_offload_eth_src() and flow_offload_eth_dst() */
static void nfp_ft_test_eth(struct nfp_ft_test *t)
{
	u16 val16;
	u32 val;

	memcpy(&val16, nfp_ft_smac, 2);
	val = val16 << 16;
	nfp_ft_test_mangle(t, FLOW_ACT_MANGLE_HDR_TYPE_ETH, 4, val,
			   ~0xffff0000);
	memcpy(&val, nfp_ft_smac + 2, 4);
	nfp_ft_test_mangle(t, FLOW_ACT_MANGLE_HDR_TYPE_ETH, 8, val,
			   ~0xffffffff);

	memcpy(&val, nfp_ft_dmac, 4);
	nfp_ft_test_mangle(t, FLOW_ACT_MANGLE_HDR_TYPE_ETH, 0, val,
			   ~0xffffffff);
	memcpy(&val16, nfp_ft_dmac + 4, 2);
	val = val16;
	nfp_ft_test_mangle(t, FLOW_ACT_MANGLE_HDR_TYPE_ETH, 4, val,
			   ~0x0000ffff);
}

/* flow_offload_port_snat() of the original direction */
static void nfp_ft_test_snat_port(struct nfp_ft_test *t,
				  enum flow_action_mangle_base l4, u16 port)
{
	nfp_ft_test_mangle(t, l4, 0, (__force u32)htonl(port << 16),
			   (__force u32)~htonl(0xffff0000));
}

/* flow_offload_checksum() */
static void nfp_ft_test_csum(struct nfp_ft_test *t, u32 flags)
{
	nfp_ft_test_act(t, FLOW_ACTION_CSUM)->csum_flags = flags;
}

/* flow_offload_vlan_push() */
static void nfp_ft_test_push(struct nfp_ft_test *t, u16 vid, u16 proto)
{
	struct flow_action_entry *e = nfp_ft_test_act(t, FLOW_ACTION_VLAN_PUSH);

	e->vlan.vid = vid;
	e->vlan.proto = htons(proto);
}

/* flow_offload_redirect() */
static void nfp_ft_test_redirect(struct nfp_ft_test *t)
{
	nfp_ft_test_act(t, FLOW_ACTION_REDIRECT)->dev = t->out_dev;
}

/* Compile the actions, return the opcodes of the firmware's action list. */
static int nfp_ft_test_compile(struct kunit *test, u8 *ops, int max)
{
	struct nfp_ft_test *t = test->priv;
	struct nfp_fl_act_head *a;
	unsigned int off = 0;
	int err, n = 0;

	err = nfp_flower_compile_action(&t->app, t->rule, t->plain_dev,
					&t->pay, &t->extack);
	if (err)
		return err;

	while (off < t->pay.meta.act_len && n < max) {
		a = (struct nfp_fl_act_head *)&t->pay.action_data[off];
		ops[n++] = a->jump_id;
		off += a->len_lw << NFP_FL_LW_SIZ;
	}

	return n;
}

/* The rule passes the callback's checks and compiles to @want's actions. */
static void nfp_ft_test_expect_ops(struct kunit *test, const u8 *want, int n)
{
	struct nfp_ft_test *t = test->priv;
	u8 ops[8];

	KUNIT_ASSERT_EQ(test, nfp_flower_ft_check_rule(t->rule, NULL), 0);
	KUNIT_ASSERT_EQ(test, nfp_ft_test_compile(test, ops, ARRAY_SIZE(ops)),
			n);
	KUNIT_EXPECT_MEMEQ(test, ops, want, n);
}

static void nfp_ft_test_routed_ipv4(struct kunit *test)
{
	static const u8 want[] = {
		NFP_FL_ACTION_OPCODE_SET_ETHERNET,
		NFP_FL_ACTION_OPCODE_OUTPUT,
	};
	struct nfp_ft_test *t = test->priv;
	struct nfp_fl_output *out;
	struct nfp_fl_set_eth *eth;
	int i;

	nfp_ft_test_match(t, t->in_dev->ifindex, false, IPPROTO_TCP);
	nfp_ft_test_eth(t);
	nfp_ft_test_redirect(t);

	nfp_ft_test_expect_ops(test, want, ARRAY_SIZE(want));

	eth = (struct nfp_fl_set_eth *)t->pay.action_data;
	for (i = 0; i < ETH_ALEN * 2; i++)
		KUNIT_EXPECT_EQ(test, eth->eth_addr_mask[i], 0xff);
	KUNIT_EXPECT_MEMEQ(test, &eth->eth_addr_val[0], nfp_ft_dmac, ETH_ALEN);
	KUNIT_EXPECT_MEMEQ(test, &eth->eth_addr_val[ETH_ALEN], nfp_ft_smac,
			   ETH_ALEN);

	out = (struct nfp_fl_output *)(eth + 1);
	KUNIT_EXPECT_EQ(test, be32_to_cpu(out->port), NFP_FT_TEST_OUT_PORT);
	KUNIT_EXPECT_TRUE(test, be16_to_cpu(out->flags) &
				NFP_FL_OUT_FLAGS_LAST);
}

static void nfp_ft_test_snat_ipv4(struct kunit *test)
{
	static const u8 want[] = {
		NFP_FL_ACTION_OPCODE_SET_ETHERNET,
		NFP_FL_ACTION_OPCODE_SET_IPV4_ADDRS,
		NFP_FL_ACTION_OPCODE_SET_TCP,
		NFP_FL_ACTION_OPCODE_OUTPUT,
	};
	struct nfp_ft_test *t = test->priv;
	struct nfp_fl_set_ip4_addrs *ip4;
	struct nfp_fl_set_tport *tp;

	nfp_ft_test_match(t, t->in_dev->ifindex, false, IPPROTO_TCP);
	nfp_ft_test_eth(t);
	/* flow_offload_ipv4_snat() */
	nfp_ft_test_mangle(t, FLOW_ACT_MANGLE_HDR_TYPE_IP4,
			   offsetof(struct iphdr, saddr),
			   (__force u32)htonl(0xc6336401),
			   (__force u32)~htonl(0xffffffff));
	nfp_ft_test_snat_port(t, FLOW_ACT_MANGLE_HDR_TYPE_TCP, 61000);
	nfp_ft_test_csum(t, TCA_CSUM_UPDATE_FLAG_IPV4HDR |
			    TCA_CSUM_UPDATE_FLAG_TCP);
	nfp_ft_test_redirect(t);

	nfp_ft_test_expect_ops(test, want, ARRAY_SIZE(want));

	ip4 = (void *)&t->pay.action_data[sizeof(struct nfp_fl_set_eth)];
	KUNIT_EXPECT_EQ(test, be32_to_cpu(ip4->ipv4_src), 0xc6336401);
	KUNIT_EXPECT_EQ(test, be32_to_cpu(ip4->ipv4_src_mask), 0xffffffff);
	KUNIT_EXPECT_EQ(test, be32_to_cpu(ip4->ipv4_dst_mask), 0);

	tp = (void *)(ip4 + 1);
	KUNIT_EXPECT_EQ(test, get_unaligned_be16(&tp->tp_port_val[0]), 61000);
	KUNIT_EXPECT_EQ(test, get_unaligned_be16(&tp->tp_port_mask[0]),
			0xffff);
	KUNIT_EXPECT_EQ(test, get_unaligned_be16(&tp->tp_port_mask[2]), 0);
}

/* The firmware updates the checksums of what it rewrites, and nfp refuses
 * a rewrite whose update was not asked for: IPv6 NAT needs the CSUM action
 * nf_flow_rule_route_ipv6() emits.
 */
static void nfp_ft_test_snat_ipv6(struct kunit *test)
{
	static const u8 want[] = {
		NFP_FL_ACTION_OPCODE_SET_ETHERNET,
		NFP_FL_ACTION_OPCODE_SET_IPV6_SRC,
		NFP_FL_ACTION_OPCODE_SET_UDP,
		NFP_FL_ACTION_OPCODE_OUTPUT,
	};
	struct nfp_ft_test *t = test->priv;
	struct in6_addr a;
	u8 ops[8];
	int i;

	ipv6_addr_set(&a, htonl(0x20010db8), 0, htonl(0xff), htonl(9));
	nfp_ft_test_match(t, t->in_dev->ifindex, true, IPPROTO_UDP);
	nfp_ft_test_eth(t);
	/* flow_offload_ipv6_snat() */
	for (i = 0; i < 4; i++)
		nfp_ft_test_mangle(t, FLOW_ACT_MANGLE_HDR_TYPE_IP6,
				   offsetof(struct ipv6hdr, saddr) + i * 4,
				   (__force u32)a.s6_addr32[i],
				   (__force u32)~htonl(0xffffffff));
	nfp_ft_test_snat_port(t, FLOW_ACT_MANGLE_HDR_TYPE_UDP, 61000);
	nfp_ft_test_redirect(t);

	KUNIT_EXPECT_EQ(test, nfp_ft_test_compile(test, ops, ARRAY_SIZE(ops)),
			-EOPNOTSUPP);
	KUNIT_EXPECT_STREQ(test, t->extack._msg,
			   "nfp: unsupported offload: set actions without updating checksums are not supported");

	t->rule->action.num_entries--;
	nfp_ft_test_csum(t, TCA_CSUM_UPDATE_FLAG_UDP);
	nfp_ft_test_redirect(t);
	nfp_ft_test_expect_ops(test, want, ARRAY_SIZE(want));
}

/* flow_offload_vlan_pop() and flow_offload_vlan_push() */
static void nfp_ft_test_vlan(struct kunit *test)
{
	static const u8 want[] = {
		NFP_FL_ACTION_OPCODE_SET_ETHERNET,
		NFP_FL_ACTION_OPCODE_POP_VLAN,
		NFP_FL_ACTION_OPCODE_PUSH_VLAN,
		NFP_FL_ACTION_OPCODE_OUTPUT,
	};
	struct nfp_ft_test *t = test->priv;

	nfp_ft_test_match(t, t->in_dev->ifindex, false, IPPROTO_UDP);
	nfp_ft_test_eth(t);
	nfp_ft_test_act(t, FLOW_ACTION_VLAN_POP);
	nfp_ft_test_push(t, 100, ETH_P_8021Q);
	nfp_ft_test_redirect(t);

	nfp_ft_test_expect_ops(test, want, ARRAY_SIZE(want));
}

static void nfp_ft_test_expect_refused(struct kunit *test, const char *msg)
{
	struct nfp_ft_test *t = test->priv;
	struct netlink_ext_ack extack = {};

	KUNIT_EXPECT_EQ(test, nfp_flower_ft_check_rule(t->rule, &extack),
			-EOPNOTSUPP);
	KUNIT_EXPECT_STREQ(test, extack._msg, msg);
}

/* What a flowtable rule may carry but this layer does not offload */
static void nfp_ft_test_refuse(struct kunit *test)
{
	struct nfp_ft_test *t = test->priv;
	struct flow_action *action = &t->rule->action;
	u8 ops[8];

	nfp_ft_test_match(t, t->in_dev->ifindex, false, IPPROTO_TCP);
	nfp_ft_test_eth(t);
	nfp_ft_test_act(t, FLOW_ACTION_PPPOE_PUSH)->pppoe.sid = 7;
	nfp_ft_test_redirect(t);
	nfp_ft_test_expect_refused(test,
				   "nfp: unsupported flowtable offload: PPPoE push");

	action->num_entries = 4;
	nfp_ft_test_push(t, 100, ETH_P_8021AD);
	nfp_ft_test_redirect(t);
	nfp_ft_test_expect_refused(test,
				   "nfp: unsupported flowtable offload: VLAN push other than 802.1Q");

	/* QinQ: the flowtable's order is not the compiler's */
	action->num_entries = 4;
	nfp_ft_test_push(t, 100, ETH_P_8021Q);
	nfp_ft_test_push(t, 200, ETH_P_8021Q);
	nfp_ft_test_redirect(t);
	nfp_ft_test_expect_refused(test,
				   "nfp: unsupported flowtable offload: more than one VLAN push");

	action->num_entries = 0;
	nfp_ft_test_act(t, FLOW_ACTION_TUNNEL_DECAP);
	nfp_ft_test_eth(t);
	nfp_ft_test_redirect(t);
	nfp_ft_test_expect_refused(test,
				   "nfp: unsupported flowtable offload: tunnel encap/decap");

	action->num_entries = 0;
	nfp_ft_test_eth(t);
	nfp_ft_test_expect_refused(test,
				   "nfp: unsupported flowtable offload: last action must be a redirect");

	/* nf_flow_rule_lwt_match(): the flow came out of a tunnel */
	nfp_ft_test_redirect(t);
	KUNIT_ASSERT_EQ(test, nfp_flower_ft_check_rule(t->rule, NULL), 0);
	t->match.dissector.used_keys |= BIT_ULL(FLOW_DISSECTOR_KEY_ENC_KEYID);
	nfp_ft_test_expect_refused(test,
				   "nfp: unsupported flowtable offload: tunnel or unsupported match key");

	/* nf_flow_rule_match() of a GRE flow: no ports */
	t->match.dissector.used_keys &= ~BIT_ULL(FLOW_DISSECTOR_KEY_ENC_KEYID);
	t->match.dissector.used_keys &= ~BIT_ULL(FLOW_DISSECTOR_KEY_PORTS);
	t->match.key.basic.ip_proto = IPPROTO_GRE;
	nfp_ft_test_expect_refused(test,
				   "nfp: unsupported flowtable offload: not TCP or UDP");
	t->match.dissector.used_keys |= BIT_ULL(FLOW_DISSECTOR_KEY_PORTS);
	t->match.key.basic.ip_proto = IPPROTO_TCP;

	/* An egress device outside the card: the flower compiler says so. */
	action->entries[action->num_entries - 1].dev = t->plain_dev;
	KUNIT_EXPECT_EQ(test, nfp_ft_test_compile(test, ops, ARRAY_SIZE(ops)),
			-EOPNOTSUPP);
	KUNIT_EXPECT_STREQ(test, t->extack._msg,
			   "nfp: unsupported offload: egress interface is not an nfp port");
}

/* The firmware's match: the representor's port, the 5-tuple, and TCP FIN
 * and RST clear (they go to the software path).
 */
static void nfp_ft_test_match_ipv4(struct kunit *test)
{
	enum nfp_flower_tun_type tun_type = NFP_FL_TUNNEL_NONE;
	struct nfp_ft_test *t = test->priv;
	struct nfp_flower_ipv4 *ip4, *ip4_msk;
	struct nfp_flower_tp_ports *tp;
	struct nfp_flower_in_port *in;
	struct nfp_fl_key_ls ls = {};
	u8 *ext, *msk;

	nfp_ft_test_match(t, t->in_dev->ifindex, false, IPPROTO_TCP);
	KUNIT_ASSERT_EQ(test, nfp_flower_calculate_key_layers(&t->app,
							      t->in_dev, &ls,
							      t->rule,
							      &tun_type, NULL),
			0);
	KUNIT_EXPECT_EQ(test, ls.key_layer, NFP_FLOWER_LAYER_PORT |
					    NFP_FLOWER_LAYER_TP |
					    NFP_FLOWER_LAYER_IPV4);
	KUNIT_EXPECT_EQ(test, ls.key_layer_two, 0);

	t->pay.unmasked_data = kunit_kzalloc(test, ls.key_size, GFP_KERNEL);
	t->pay.mask_data = kunit_kzalloc(test, ls.key_size, GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, t->pay.unmasked_data);
	KUNIT_ASSERT_NOT_NULL(test, t->pay.mask_data);
	KUNIT_ASSERT_EQ(test, nfp_flower_compile_flow_match(&t->app, t->rule,
							    &ls, t->in_dev,
							    &t->pay, tun_type,
							    NULL),
			0);

	ext = t->pay.unmasked_data + sizeof(struct nfp_flower_meta_tci);
	msk = t->pay.mask_data + sizeof(struct nfp_flower_meta_tci);
	in = (void *)ext;
	KUNIT_EXPECT_EQ(test, be32_to_cpu(in->in_port), NFP_FT_TEST_IN_PORT);
	ext += sizeof(*in);
	msk += sizeof(*in);

	tp = (void *)ext;
	KUNIT_EXPECT_EQ(test, be16_to_cpu(tp->port_src), 40000);
	KUNIT_EXPECT_EQ(test, be16_to_cpu(tp->port_dst), 443);
	ext += sizeof(*tp);
	msk += sizeof(*tp);

	ip4 = (void *)ext;
	ip4_msk = (void *)msk;
	KUNIT_EXPECT_EQ(test, be32_to_cpu(ip4->ipv4_src), 0x0a000001);
	KUNIT_EXPECT_EQ(test, be32_to_cpu(ip4->ipv4_dst), 0xc0a80002);
	KUNIT_EXPECT_EQ(test, ip4->ip_ext.proto, IPPROTO_TCP);
	KUNIT_EXPECT_EQ(test, ip4->ip_ext.flags, 0);
	KUNIT_EXPECT_EQ(test, ip4_msk->ip_ext.flags,
			NFP_FL_TCP_FLAG_FIN | NFP_FL_TCP_FLAG_RST);
}

/* Binding needs a representor with hw-tc-offload on, and says so. */
static void nfp_ft_test_bind_refused(struct kunit *test)
{
	struct nfp_ft_test *t = test->priv;
	struct flow_block_offload bo = {
		.command = FLOW_BLOCK_BIND,
		.binder_type = FLOW_BLOCK_BINDER_TYPE_CLSACT_INGRESS,
		.extack = &t->extack,
	};

	KUNIT_EXPECT_EQ(test, nfp_flower_setup_ft(t->plain_dev, &bo),
			-EOPNOTSUPP);
	KUNIT_EXPECT_STREQ(test, t->extack._msg,
			   "nfp: flowtable offload needs a representor");

	t->in_dev->features &= ~NETIF_F_HW_TC;
	KUNIT_EXPECT_EQ(test, nfp_flower_setup_ft(t->in_dev, &bo),
			-EOPNOTSUPP);
	KUNIT_EXPECT_STREQ(test, t->extack._msg,
			   "TC offload is disabled on net device");
}

static int nfp_ft_test_cb(struct kunit *test, enum flow_cls_command cmd,
			  unsigned long cookie)
{
	struct nfp_ft_test *t = test->priv;
	struct flow_cls_offload cls = {
		/* Host order, as nf_flow_offload_init() sets it */
		.common.protocol = (__force __be16)ETH_P_ALL,
		.common.extack = &t->extack,
		.command = cmd,
		.cookie = cookie,
		.rule = t->rule,
	};

	t->extack._msg = NULL;
	return nfp_flower_setup_ft_cb(TC_SETUP_CLSFLOWER, &cls,
				      netdev_priv(t->in_dev));
}

/* The callback of a representor sees the flows of every device of the
 * flowtable and the flowtable's repeated requests: it answers for its own
 * flows only, quietly for the others, and never installs a flow twice.
 */
static void nfp_ft_test_callback(struct kunit *test)
{
	const unsigned long cookie = (unsigned long)test;
	struct nfp_ft_test *t = test->priv;
	struct nfp_fl_payload *installed;
	struct nfp_fl_test_meta *m;

	m = nfp_fl_test_meta_init(test, t->in_dev, cookie);
	t->app.priv = &m->priv;
	nfp_ft_test_eth(t);
	nfp_ft_test_redirect(t);

	/* A flow of another device */
	nfp_ft_test_match(t, t->out_dev->ifindex, false, IPPROTO_TCP);
	KUNIT_EXPECT_EQ(test, nfp_ft_test_cb(test, FLOW_CLS_REPLACE, cookie + 1),
			-EOPNOTSUPP);
	KUNIT_EXPECT_NULL(test, t->extack._msg);
	KUNIT_EXPECT_EQ(test, nfp_ft_test_cb(test, FLOW_CLS_DESTROY, cookie + 1),
			-ENOENT);
	KUNIT_EXPECT_NULL(test, t->extack._msg);
	KUNIT_EXPECT_EQ(test, nfp_ft_test_cb(test, FLOW_CLS_STATS, cookie + 1),
			-ENOENT);
	KUNIT_EXPECT_NULL(test, t->extack._msg);

	/* Its own flow, installed: asked again, it is there already. With
	 * no firmware here, adding would fail.
	 */
	nfp_ft_test_match(t, t->in_dev->ifindex, false, IPPROTO_TCP);
	KUNIT_EXPECT_EQ(test, nfp_ft_test_cb(test, FLOW_CLS_REPLACE, cookie), 0);
	installed = nfp_flower_search_fl_table(&t->app, cookie, t->in_dev);
	KUNIT_EXPECT_PTR_EQ(test, installed, &m->installed);

	t->in_dev->features &= ~NETIF_F_HW_TC;
	KUNIT_EXPECT_EQ(test, nfp_ft_test_cb(test, FLOW_CLS_REPLACE, cookie),
			-EOPNOTSUPP);
	KUNIT_EXPECT_STREQ(test, t->extack._msg,
			   "TC offload is disabled on net device");
}

/* A flowtable rule in the flow table as nfp_flower_add_offload() leaves
 * it, minus the firmware: the delete path frees it.
 */
static struct nfp_fl_payload *nfp_ft_test_installed(struct nfp_app *app,
						    struct net_device *netdev,
						    unsigned long cookie)
{
	struct nfp_flower_priv *priv = app->priv;
	struct nfp_fl_payload *flow;

	flow = kzalloc_obj(*flow);
	if (!flow)
		return NULL;
	INIT_LIST_HEAD(&flow->linked_flows);
	flow->meta.mask_len = NFP_FL_TEST_MASK_LEN;
	flow->mask_data = kzalloc(NFP_FL_TEST_MASK_LEN, GFP_KERNEL);
	flow->unmasked_data = kzalloc(NFP_FL_TEST_MASK_LEN, GFP_KERNEL);
	flow->action_data = kzalloc(NFP_FL_MAX_A_SIZ, GFP_KERNEL);
	if (!flow->mask_data || !flow->unmasked_data || !flow->action_data)
		goto err_free;
	if (nfp_compile_flow_metadata(app, cookie, flow, netdev, NULL))
		goto err_free;
	flow->tc_flower_cookie = cookie;
	flow->nft_flowtable = true;
	if (rhashtable_insert_fast(&priv->flow_table, &flow->fl_node,
				   nfp_flower_table_params))
		goto err_release;

	return flow;

err_release:
	nfp_modify_flow_metadata(app, flow);
err_free:
	kfree(flow->action_data);
	kfree(flow->unmasked_data);
	kfree(flow->mask_data);
	kfree(flow);
	return NULL;
}

/* At unbind, the representor's flowtable rules go and its tc rules stay,
 * and the flowtable's requests never touch a tc rule.
 */
static void nfp_ft_test_unbind(struct kunit *test)
{
	const unsigned long cookie = (unsigned long)test;
	struct nfp_fl_payload *ft_flow, *found;
	struct flow_block_cb *block_cb, *next;
	struct nfp_ft_test *t = test->priv;
	struct flow_block block = {};
	struct nfp_fl_test_meta *m;
	struct flow_block_offload bo = {
		.command = FLOW_BLOCK_BIND,
		.binder_type = FLOW_BLOCK_BINDER_TYPE_CLSACT_INGRESS,
		.block = &block,
		.extack = &t->extack,
	};

	m = nfp_fl_test_meta_init(test, t->in_dev, cookie);
	t->app.priv = &m->priv;

	ft_flow = nfp_ft_test_installed(&t->app, t->in_dev, cookie + 1);
	KUNIT_ASSERT_NOT_NULL(test, ft_flow);

	/* The flowtable's DESTROY of a tc rule's cookie leaves it. */
	KUNIT_EXPECT_EQ(test, nfp_ft_test_cb(test, FLOW_CLS_DESTROY, cookie),
			-ENOENT);
	found = nfp_flower_search_fl_table(&t->app, cookie, t->in_dev);
	KUNIT_EXPECT_PTR_EQ(test, found, &m->installed);

	nfp_flower_ft_flush(&t->app, t->out_dev);
	found = nfp_flower_search_fl_table(&t->app, cookie + 1, t->in_dev);
	KUNIT_EXPECT_PTR_EQ(test, found, ft_flow);

	/* Bound and unbound as nf_flow_table_offload_setup() does it */
	INIT_LIST_HEAD(&block.cb_list);
	INIT_LIST_HEAD(&bo.cb_list);
	KUNIT_ASSERT_EQ(test, nfp_flower_setup_ft(t->in_dev, &bo), 0);
	list_splice_init(&bo.cb_list, &block.cb_list);
	bo.command = FLOW_BLOCK_UNBIND;
	KUNIT_ASSERT_EQ(test, nfp_flower_setup_ft(t->in_dev, &bo), 0);
	list_for_each_entry_safe(block_cb, next, &bo.cb_list, list) {
		list_del(&block_cb->list);
		flow_block_cb_free(block_cb);
	}

	found = nfp_flower_search_fl_table(&t->app, cookie + 1, t->in_dev);
	KUNIT_EXPECT_NULL(test, found);
	found = nfp_flower_search_fl_table(&t->app, cookie, t->in_dev);
	KUNIT_EXPECT_PTR_EQ(test, found, &m->installed);
}

static struct kunit_case nfp_ft_test_cases[] = {
	KUNIT_CASE(nfp_ft_test_bind_refused),
	KUNIT_CASE(nfp_ft_test_routed_ipv4),
	KUNIT_CASE(nfp_ft_test_snat_ipv4),
	KUNIT_CASE(nfp_ft_test_snat_ipv6),
	KUNIT_CASE(nfp_ft_test_vlan),
	KUNIT_CASE(nfp_ft_test_refuse),
	KUNIT_CASE(nfp_ft_test_match_ipv4),
	KUNIT_CASE(nfp_ft_test_callback),
	KUNIT_CASE(nfp_ft_test_unbind),
	{}
};

static struct kunit_suite nfp_ft_test_suite = {
	.name = "nfp_flower_ft",
	.init = nfp_ft_test_init,
	.test_cases = nfp_ft_test_cases,
};

kunit_test_suites(&nfp_fl_test_suite, &nfp_ft_test_suite);
