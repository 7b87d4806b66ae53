// SPDX-License-Identifier: GPL-2.0
/*
 * A model of a flowtable offload engine (TC_SETUP_FT).
 *
 * The rule table belongs to the nsim device (the "ASIC") and is shared by
 * its ports. Each port binds its own flow block callback; the core calls
 * every callback of a flowtable for every flow, and a port takes only the
 * rules whose ingress port it is, as hardware drivers do. A packet that
 * arrives on a port from its peer is looked up before it reaches the stack;
 * on a hit it is rewritten and sent out of the egress port, and the rule's
 * counters are reported back to the core.
 */

#include <linux/debugfs.h>
#include <linux/etherdevice.h>
#include <linux/fault-inject.h>
#include <linux/if_vlan.h>
#include <linux/ip.h>
#include <linux/ipv6.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/rhashtable.h>
#include <linux/seq_file.h>
#include <linux/tc_act/tc_csum.h>
#include <linux/tcp.h>
#include <linux/udp.h>
#include <net/checksum.h>
#include <net/flow_offload.h>
#include <net/ip.h>
#include <net/tcp.h>

#include "netdevsim.h"

/* Enough for what nf_flow_table_offload.c emits: four Ethernet words, two
 * IPv6 addresses and two ports.
 */
#define NSIM_FT_MAX_MANGLES	16
#define NSIM_FT_MAX_VLANS	2

/* Ports of one device may live in different netns: key on the port. */
struct nsim_ft_key {
	const struct netdevsim *port;
	__be16 vlan_tpid[NSIM_FT_MAX_VLANS];
	u16 vlan_id[NSIM_FT_MAX_VLANS];
	__be16 n_proto;
	u8 ip_proto;
	u8 pad;
	__be32 src[4];
	__be32 dst[4];
	__be16 sport;
	__be16 dport;
};

struct nsim_ft_mangle {
	enum flow_action_mangle_base htype;
	u32 offset;
	u32 mask;
	u32 val;
};

struct nsim_ft_desc {
	struct nsim_ft_key key;
	struct netdevsim *in_ns;
	struct netdevsim *out_ns;
	u32 csum_flags;
	u8 n_vlans;
	u8 n_vlan_pop;
	u8 n_vlan_push;
	u8 n_mangles;
	struct {
		__be16 proto;
		u16 tci;
	} vlan_push[NSIM_FT_MAX_VLANS];
	struct nsim_ft_mangle mangles[NSIM_FT_MAX_MANGLES];
};

struct nsim_ft_rule {
	struct rhash_head cookie_node;
	struct rhash_head key_node;
	struct list_head list;
	unsigned long cookie;
	/* What the core asked for, compared when a cookie is re-sent. */
	struct nsim_ft_desc d;
	/* Totals, for the dump; the reported_* part was handed to the core. */
	atomic64_t pkts;
	atomic64_t bytes;
	u64 reported_pkts;
	u64 reported_bytes;
	unsigned long lastused;
	unsigned long created;
	struct rcu_head rcu;
};

struct nsim_ft {
	struct nsim_dev *nsim_dev;
	struct rhashtable cookies;
	struct rhashtable keys;
	struct mutex lock;	/* serialises rule changes and the list */
	struct list_head rules;
	unsigned int count;
	u64 max;
	struct dentry *ddir;
	bool fail_bind;
	bool fail_add;
	bool fail_del;
	bool fail_stats;
	/* Random failures, as the fault injection framework configures
	 * them: of REPLACE, DESTROY and STATS ("fault" in debugfs), and of
	 * binding a port ("fault_bind"; unbinding cannot fail).
	 */
	struct fault_attr fault;
	struct fault_attr fault_bind;
	bool no_fwd;
	u32 stale_on_unbind;
	/* Every REPLACE any port was asked, whatever the answer. */
	atomic_t replace_calls;
};

static DECLARE_FAULT_ATTR(nsim_ft_fault_default);

static const struct rhashtable_params nsim_ft_cookie_params = {
	.head_offset = offsetof(struct nsim_ft_rule, cookie_node),
	.key_offset = offsetof(struct nsim_ft_rule, cookie),
	.key_len = sizeof(unsigned long),
	.automatic_shrinking = true,
};

static const struct rhashtable_params nsim_ft_key_params = {
	.head_offset = offsetof(struct nsim_ft_rule, key_node),
	.key_offset = offsetof(struct nsim_ft_rule, d.key),
	.key_len = sizeof(struct nsim_ft_key),
	.automatic_shrinking = true,
};

/* Binding runs without RTNL: the driver's block list needs its own lock. */
static LIST_HEAD(nsim_ft_block_cb_list);
static DEFINE_MUTEX(nsim_ft_block_lock);

static void nsim_ft_rule_unlink(struct nsim_ft *ft, struct nsim_ft_rule *r)
{
	lockdep_assert_held(&ft->lock);

	rhashtable_remove_fast(&ft->keys, &r->key_node, nsim_ft_key_params);
	rhashtable_remove_fast(&ft->cookies, &r->cookie_node,
			       nsim_ft_cookie_params);
	list_del(&r->list);
	WRITE_ONCE(ft->count, ft->count - 1);
	kfree_rcu(r, rcu);
}

static int nsim_ft_parse_match(struct netdevsim *ns, struct flow_rule *rule,
			       struct nsim_ft_rule *r,
			       struct netlink_ext_ack *extack)
{
	struct flow_dissector *dissector = rule->match.dissector;
	struct nsim_ft_key *key = &r->d.key;
	struct flow_match_control control;
	struct flow_match_basic basic;
	struct flow_match_ports ports;
	struct flow_match_meta meta;

	if (dissector->used_keys &
	    ~(BIT_ULL(FLOW_DISSECTOR_KEY_META) |
	      BIT_ULL(FLOW_DISSECTOR_KEY_CONTROL) |
	      BIT_ULL(FLOW_DISSECTOR_KEY_BASIC) |
	      BIT_ULL(FLOW_DISSECTOR_KEY_IPV4_ADDRS) |
	      BIT_ULL(FLOW_DISSECTOR_KEY_IPV6_ADDRS) |
	      BIT_ULL(FLOW_DISSECTOR_KEY_PORTS) |
	      BIT_ULL(FLOW_DISSECTOR_KEY_TCP) |
	      BIT_ULL(FLOW_DISSECTOR_KEY_VLAN) |
	      BIT_ULL(FLOW_DISSECTOR_KEY_CVLAN))) {
		NSIM_EA(extack, "unsupported match key (tunnel or other)");
		return -EOPNOTSUPP;
	}

	if (!flow_rule_match_key(rule, FLOW_DISSECTOR_KEY_META)) {
		NSIM_EA(extack, "flow does not match on an ingress port");
		return -EOPNOTSUPP;
	}
	flow_rule_match_meta(rule, &meta);
	if (meta.mask->ingress_ifindex != 0xffffffff) {
		NSIM_EA(extack, "partial ingress port match not supported");
		return -EOPNOTSUPP;
	}
	/* Every port of the flowtable is asked; only the ingress port takes
	 * the rule. Not an error worth a message: the right port answers.
	 */
	if (meta.key->ingress_ifindex != ns->netdev->ifindex)
		return -EOPNOTSUPP;
	key->port = ns;

	if (flow_rule_match_key(rule, FLOW_DISSECTOR_KEY_VLAN)) {
		struct flow_match_vlan vlan;

		flow_rule_match_vlan(rule, &vlan);
		if (vlan.mask->vlan_id != VLAN_VID_MASK ||
		    vlan.mask->vlan_priority || vlan.mask->vlan_dei ||
		    vlan.key->vlan_tpid != htons(ETH_P_8021Q)) {
			NSIM_EA(extack, "only an exact 802.1Q VLAN ID match is supported");
			return -EOPNOTSUPP;
		}
		key->vlan_tpid[0] = vlan.key->vlan_tpid;
		key->vlan_id[0] = vlan.key->vlan_id;
		r->d.n_vlans = 1;
	}
	if (flow_rule_match_key(rule, FLOW_DISSECTOR_KEY_CVLAN)) {
		struct flow_match_vlan cvlan;

		flow_rule_match_cvlan(rule, &cvlan);
		if (!r->d.n_vlans || cvlan.mask->vlan_id != VLAN_VID_MASK ||
		    cvlan.mask->vlan_priority || cvlan.mask->vlan_dei ||
		    cvlan.key->vlan_tpid != htons(ETH_P_8021Q)) {
			NSIM_EA(extack, "only an exact inner 802.1Q VLAN ID match is supported");
			return -EOPNOTSUPP;
		}
		key->vlan_tpid[1] = cvlan.key->vlan_tpid;
		key->vlan_id[1] = cvlan.key->vlan_id;
		r->d.n_vlans = 2;
	}

	flow_rule_match_basic(rule, &basic);
	flow_rule_match_control(rule, &control);
	if (basic.mask->n_proto != htons(0xffff) ||
	    basic.mask->ip_proto != 0xff) {
		NSIM_EA(extack, "flow must match the L3 and L4 protocol exactly");
		return -EOPNOTSUPP;
	}
	key->n_proto = basic.key->n_proto;
	key->ip_proto = basic.key->ip_proto;
	if (key->ip_proto != IPPROTO_TCP && key->ip_proto != IPPROTO_UDP) {
		NSIM_EA(extack, "only TCP and UDP flows can be offloaded");
		return -EOPNOTSUPP;
	}

	switch (ntohs(key->n_proto)) {
	case ETH_P_IP: {
		struct flow_match_ipv4_addrs addrs;

		if (control.key->addr_type != FLOW_DISSECTOR_KEY_IPV4_ADDRS)
			goto err_addr;
		flow_rule_match_ipv4_addrs(rule, &addrs);
		if (addrs.mask->src != htonl(0xffffffff) ||
		    addrs.mask->dst != htonl(0xffffffff))
			goto err_addr;
		key->src[0] = addrs.key->src;
		key->dst[0] = addrs.key->dst;
		break;
	}
	case ETH_P_IPV6: {
		struct flow_match_ipv6_addrs addrs;

		if (control.key->addr_type != FLOW_DISSECTOR_KEY_IPV6_ADDRS)
			goto err_addr;
		flow_rule_match_ipv6_addrs(rule, &addrs);
		if (memchr_inv(&addrs.mask->src, 0xff, sizeof(addrs.mask->src)) ||
		    memchr_inv(&addrs.mask->dst, 0xff, sizeof(addrs.mask->dst)))
			goto err_addr;
		memcpy(key->src, &addrs.key->src, sizeof(key->src));
		memcpy(key->dst, &addrs.key->dst, sizeof(key->dst));
		break;
	}
	default:
		NSIM_EA(extack, "only IPv4 and IPv6 flows can be offloaded");
		return -EOPNOTSUPP;
	}

	if (!flow_rule_match_key(rule, FLOW_DISSECTOR_KEY_PORTS)) {
		NSIM_EA(extack, "flow must match L4 ports");
		return -EOPNOTSUPP;
	}
	flow_rule_match_ports(rule, &ports);
	if (ports.mask->src != htons(0xffff) || ports.mask->dst != htons(0xffff)) {
		NSIM_EA(extack, "only exact L4 port matches are supported");
		return -EOPNOTSUPP;
	}
	key->sport = ports.key->src;
	key->dport = ports.key->dst;

	/* The core asks to see FIN and RST in software: the datapath never
	 * forwards them, whatever the rule.
	 */
	if (flow_rule_match_key(rule, FLOW_DISSECTOR_KEY_TCP)) {
		struct flow_match_tcp tcp;

		flow_rule_match_tcp(rule, &tcp);
		if (tcp.key->flags ||
		    tcp.mask->flags & ~htons(TCPHDR_FIN | TCPHDR_RST)) {
			NSIM_EA(extack, "only a match on FIN and RST cleared is supported");
			return -EOPNOTSUPP;
		}
	}

	return 0;

err_addr:
	NSIM_EA(extack, "only exact IP address matches are supported");
	return -EOPNOTSUPP;
}

/* Which mangles the model can apply, with the checksum each one breaks. */
static int nsim_ft_check_mangle(const struct nsim_ft_rule *r,
				const struct flow_action_entry *act,
				u32 *csum_needed,
				struct netlink_ext_ack *extack)
{
	u32 off = act->mangle.offset;

	if (off % 4) {
		NSIM_EA(extack, "unaligned header rewrite not supported");
		return -EOPNOTSUPP;
	}

	switch (act->mangle.htype) {
	case FLOW_ACT_MANGLE_HDR_TYPE_ETH:
		if (off + 4 > ETH_ALEN * 2)
			goto err_field;
		return 0;
	case FLOW_ACT_MANGLE_HDR_TYPE_IP4:
		if (r->d.key.n_proto != htons(ETH_P_IP) ||
		    off < offsetof(struct iphdr, saddr) ||
		    off + 4 > sizeof(struct iphdr))
			goto err_field;
		*csum_needed |= TCA_CSUM_UPDATE_FLAG_IPV4HDR;
		break;
	case FLOW_ACT_MANGLE_HDR_TYPE_IP6:
		if (r->d.key.n_proto != htons(ETH_P_IPV6) ||
		    off < offsetof(struct ipv6hdr, saddr) ||
		    off + 4 > sizeof(struct ipv6hdr))
			goto err_field;
		break;
	case FLOW_ACT_MANGLE_HDR_TYPE_TCP:
		if (r->d.key.ip_proto != IPPROTO_TCP || off)
			goto err_field;
		break;
	case FLOW_ACT_MANGLE_HDR_TYPE_UDP:
		if (r->d.key.ip_proto != IPPROTO_UDP || off)
			goto err_field;
		break;
	default:
		goto err_field;
	}

	*csum_needed |= r->d.key.ip_proto == IPPROTO_TCP ?
			TCA_CSUM_UPDATE_FLAG_TCP : TCA_CSUM_UPDATE_FLAG_UDP;
	return 0;

err_field:
	NSIM_EA(extack, "rewrite of this header field is not supported");
	return -EOPNOTSUPP;
}

static int nsim_ft_parse_actions(struct netdevsim *ns, struct flow_rule *rule,
				 struct nsim_ft_rule *r,
				 struct netlink_ext_ack *extack)
{
	const struct flow_action_entry *act;
	u32 csum_needed = 0;
	int err, i;

	flow_action_for_each(i, act, &rule->action) {
		switch (act->id) {
		case FLOW_ACTION_MANGLE:
			if (r->d.n_mangles == NSIM_FT_MAX_MANGLES) {
				NSIM_EA(extack, "too many header rewrites");
				return -EOPNOTSUPP;
			}
			err = nsim_ft_check_mangle(r, act, &csum_needed, extack);
			if (err)
				return err;
			r->d.mangles[r->d.n_mangles].htype = act->mangle.htype;
			r->d.mangles[r->d.n_mangles].offset = act->mangle.offset;
			r->d.mangles[r->d.n_mangles].mask = act->mangle.mask;
			r->d.mangles[r->d.n_mangles].val = act->mangle.val;
			r->d.n_mangles++;
			break;
		case FLOW_ACTION_CSUM:
			if (act->csum_flags & ~(TCA_CSUM_UPDATE_FLAG_IPV4HDR |
						TCA_CSUM_UPDATE_FLAG_TCP |
						TCA_CSUM_UPDATE_FLAG_UDP)) {
				NSIM_EA(extack, "unsupported checksum update");
				return -EOPNOTSUPP;
			}
			r->d.csum_flags |= act->csum_flags;
			break;
		case FLOW_ACTION_VLAN_POP:
			if (r->d.n_vlan_pop == r->d.n_vlans) {
				NSIM_EA(extack, "VLAN pop without a matching VLAN tag");
				return -EOPNOTSUPP;
			}
			r->d.n_vlan_pop++;
			break;
		case FLOW_ACTION_VLAN_PUSH:
			if (r->d.n_vlan_push == NSIM_FT_MAX_VLANS ||
			    act->vlan.proto != htons(ETH_P_8021Q)) {
				NSIM_EA(extack, "only up to two 802.1Q tags can be pushed");
				return -EOPNOTSUPP;
			}
			r->d.vlan_push[r->d.n_vlan_push].proto = act->vlan.proto;
			r->d.vlan_push[r->d.n_vlan_push].tci =
				act->vlan.vid | act->vlan.prio << VLAN_PRIO_SHIFT;
			r->d.n_vlan_push++;
			break;
		case FLOW_ACTION_REDIRECT:
			if (r->d.out_ns) {
				NSIM_EA(extack, "only one egress port per flow");
				return -EOPNOTSUPP;
			}
			if (!netdev_is_nsim(act->dev) ||
			    ((struct netdevsim *)netdev_priv(act->dev))->nsim_dev !=
			    ns->nsim_dev) {
				NSIM_EA(extack, "egress device is not a port of this device");
				return -EOPNOTSUPP;
			}
			r->d.out_ns = netdev_priv(act->dev);
			break;
		default:
			NSIM_EA(extack, "action not supported by the flow engine");
			return -EOPNOTSUPP;
		}
	}

	if (!r->d.out_ns) {
		NSIM_EA(extack, "flow has no egress port");
		return -EOPNOTSUPP;
	}
	/* Like real hardware: a rewrite must come with its checksum fix. */
	if (csum_needed & ~r->d.csum_flags) {
		NSIM_EA(extack, "header rewrite without the matching checksum update");
		return -EOPNOTSUPP;
	}

	return 0;
}

static int nsim_ft_rule_replace(struct netdevsim *ns, struct flow_cls_offload *cls)
{
	struct flow_rule *rule = flow_cls_offload_flow_rule(cls);
	struct netlink_ext_ack *extack = cls->common.extack;
	struct nsim_ft *ft = ns->nsim_dev->ft;
	struct nsim_ft_rule *r, *old;
	int err;

	r = kzalloc_obj(*r);
	if (!r)
		return -ENOMEM;
	r->cookie = cls->cookie;
	r->d.in_ns = ns;

	err = nsim_ft_parse_match(ns, rule, r, extack);
	if (err)
		goto err_free;
	err = nsim_ft_parse_actions(ns, rule, r, extack);
	if (err)
		goto err_free;

	mutex_lock(&ft->lock);
	/* The core re-sends REPLACE while software still sees the flow: keep
	 * the rule and say so, as mlx5, mtk and airoha do. A cookie is a
	 * tuple's address and may come back for another flow (after a failed
	 * DESTROY, say): replace the rule then.
	 */
	old = rhashtable_lookup_fast(&ft->cookies, &r->cookie,
				     nsim_ft_cookie_params);
	if (old && !memcmp(&old->d, &r->d, sizeof(r->d))) {
		err = -EEXIST;
		goto err_unlock;
	}
	if (old)
		nsim_ft_rule_unlink(ft, old);
	if (ft->fail_add) {
		NSIM_EA(extack, "injected failure (fail_add)");
		err = -EIO;
		goto err_unlock;
	}
	if (should_fail(&ft->fault, 1)) {
		NSIM_EA(extack, "injected failure (fault)");
		err = -EIO;
		goto err_unlock;
	}
	if (ft->count >= ft->max) {
		NSIM_EA(extack, "flow table is full");
		err = -ENOSPC;
		goto err_unlock;
	}
	err = rhashtable_lookup_insert_fast(&ft->keys, &r->key_node,
					    nsim_ft_key_params);
	if (err) {
		/* Another cookie's rule: not this one, so not -EEXIST. */
		if (err == -EEXIST) {
			NSIM_EA(extack, "a rule with the same match is installed");
			err = -EBUSY;
		}
		goto err_unlock;
	}
	err = rhashtable_insert_fast(&ft->cookies, &r->cookie_node,
				     nsim_ft_cookie_params);
	if (err) {
		rhashtable_remove_fast(&ft->keys, &r->key_node,
				       nsim_ft_key_params);
		goto err_unlock;
	}
	r->created = jiffies;
	r->lastused = r->created;
	list_add_tail(&r->list, &ft->rules);
	WRITE_ONCE(ft->count, ft->count + 1);
	mutex_unlock(&ft->lock);
	return 0;

err_unlock:
	mutex_unlock(&ft->lock);
err_free:
	kfree(r);
	return err;
}

/* A rule of @ns by its cookie; rules installed through other ports are
 * not ours to remove or report.
 */
static struct nsim_ft_rule *nsim_ft_lookup(struct nsim_ft *ft,
					   struct netdevsim *ns,
					   unsigned long cookie)
{
	struct nsim_ft_rule *r;

	lockdep_assert_held(&ft->lock);
	r = rhashtable_lookup_fast(&ft->cookies, &cookie, nsim_ft_cookie_params);
	return r && r->d.in_ns == ns ? r : NULL;
}

static int nsim_ft_rule_destroy(struct netdevsim *ns, struct flow_cls_offload *cls)
{
	struct nsim_ft *ft = ns->nsim_dev->ft;
	struct nsim_ft_rule *r;
	int err = 0;

	mutex_lock(&ft->lock);
	r = nsim_ft_lookup(ft, ns, cls->cookie);
	if (!r) {
		err = -ENOENT;
	} else if (ft->fail_del) {
		NSIM_EA(cls->common.extack, "injected failure (fail_del)");
		err = -EIO;
	} else if (should_fail(&ft->fault, 1)) {
		NSIM_EA(cls->common.extack, "injected failure (fault)");
		err = -EIO;
	} else {
		nsim_ft_rule_unlink(ft, r);
	}
	mutex_unlock(&ft->lock);

	return err;
}

static int nsim_ft_rule_stats(struct netdevsim *ns, struct flow_cls_offload *cls)
{
	struct nsim_ft *ft = ns->nsim_dev->ft;
	struct nsim_ft_rule *r;
	u64 pkts, bytes;
	int err = 0;

	mutex_lock(&ft->lock);
	r = nsim_ft_lookup(ft, ns, cls->cookie);
	if (!r) {
		err = -ENOENT;
	} else if (ft->fail_stats) {
		NSIM_EA(cls->common.extack, "injected failure (fail_stats)");
		err = -EIO;
	} else if (should_fail(&ft->fault, 1)) {
		NSIM_EA(cls->common.extack, "injected failure (fault)");
		err = -EIO;
	} else {
		/* The core adds what it is given: report the delta. */
		pkts = atomic64_read(&r->pkts);
		bytes = atomic64_read(&r->bytes);
		flow_stats_update(&cls->stats, bytes - r->reported_bytes,
				  pkts - r->reported_pkts, 0,
				  READ_ONCE(r->lastused),
				  FLOW_ACTION_HW_STATS_DELAYED);
		r->reported_pkts = pkts;
		r->reported_bytes = bytes;
	}
	mutex_unlock(&ft->lock);

	return err;
}

static int nsim_ft_block_cb(enum tc_setup_type type, void *type_data,
			    void *cb_priv)
{
	struct flow_cls_offload *cls = type_data;
	struct netdevsim *ns = cb_priv;

	if (type != TC_SETUP_CLSFLOWER)
		return -EOPNOTSUPP;

	switch (cls->command) {
	case FLOW_CLS_REPLACE:
		atomic_inc(&ns->nsim_dev->ft->replace_calls);
		return nsim_ft_rule_replace(ns, cls);
	case FLOW_CLS_DESTROY:
		return nsim_ft_rule_destroy(ns, cls);
	case FLOW_CLS_STATS:
		return nsim_ft_rule_stats(ns, cls);
	default:
		return -EOPNOTSUPP;
	}
}

/* Remove the rules that use @ns. On unbind, those it installed: the core
 * should have destroyed them first, so they are counted as stale.
 */
static unsigned int nsim_ft_flush_port(struct nsim_ft *ft,
				       struct netdevsim *ns, bool unbind)
{
	struct nsim_ft_rule *r, *tmp;
	unsigned int n = 0;

	mutex_lock(&ft->lock);
	list_for_each_entry_safe(r, tmp, &ft->rules, list) {
		if (r->d.in_ns != ns && (unbind || r->d.out_ns != ns))
			continue;
		nsim_ft_rule_unlink(ft, r);
		if (unbind)
			ft->stale_on_unbind++;
		n++;
	}
	mutex_unlock(&ft->lock);

	return n;
}

int nsim_ft_setup(struct netdevsim *ns, struct flow_block_offload *f)
{
	struct nsim_ft *ft = ns->nsim_dev->ft;
	int err;

	if (f->command == FLOW_BLOCK_BIND && ft->fail_bind) {
		NSIM_EA(f->extack, "injected failure (fail_bind)");
		return -EOPNOTSUPP;
	}
	if (f->command == FLOW_BLOCK_BIND && should_fail(&ft->fault_bind, 1)) {
		NSIM_EA(f->extack, "injected failure (fault_bind)");
		return -EIO;
	}

	mutex_lock(&nsim_ft_block_lock);
	err = flow_block_cb_setup_simple(f, &nsim_ft_block_cb_list,
					 nsim_ft_block_cb, ns, ns, true);
	mutex_unlock(&nsim_ft_block_lock);
	if (!err && f->command == FLOW_BLOCK_UNBIND)
		nsim_ft_flush_port(ft, ns, true);

	return err;
}

void nsim_ft_port_del(struct netdevsim *ns)
{
	struct nsim_ft *ft = ns->nsim_dev->ft;

	/* The datapath of other ports may still hold a rule that sends to
	 * @ns: wait for it before the port goes away.
	 */
	if (ft && nsim_ft_flush_port(ft, ns, false))
		synchronize_net();
}

/* Apply one 32-bit rewrite to @hdr and return the old word. */
static u32 nsim_ft_mangle_word(void *hdr, const struct nsim_ft_mangle *m)
{
	u32 old, new;

	memcpy(&old, hdr + m->offset, sizeof(old));
	new = (old & m->mask) | (m->val & ~m->mask);
	memcpy(hdr + m->offset, &new, sizeof(new));
	return old;
}

static __sum16 *nsim_ft_l4_check(struct sk_buff *skb, void *l4,
				 const struct nsim_ft_key *key)
{
	struct udphdr *uh = l4;

	if (key->ip_proto == IPPROTO_TCP)
		return &((struct tcphdr *)l4)->check;
	/* UDP over IPv4 may carry no checksum: keep it that way. */
	if (!uh->check && skb->ip_summed != CHECKSUM_PARTIAL &&
	    key->n_proto == htons(ETH_P_IP))
		return NULL;
	return &uh->check;
}

static void nsim_ft_apply_mangles(struct sk_buff *skb,
				  const struct nsim_ft_rule *r, void *l2,
				  void *l3, void *l4)
{
	__sum16 *l4check = nsim_ft_l4_check(skb, l4, &r->d.key);
	bool l4csum = r->d.csum_flags & (TCA_CSUM_UPDATE_FLAG_TCP |
				       TCA_CSUM_UPDATE_FLAG_UDP);
	int i;

	for (i = 0; i < r->d.n_mangles; i++) {
		const struct nsim_ft_mangle *m = &r->d.mangles[i];
		void *hdr;
		u32 old, new;
		bool pseudo;

		switch (m->htype) {
		case FLOW_ACT_MANGLE_HDR_TYPE_ETH:
			nsim_ft_mangle_word(l2, m);
			continue;
		case FLOW_ACT_MANGLE_HDR_TYPE_IP4:
		case FLOW_ACT_MANGLE_HDR_TYPE_IP6:
			hdr = l3;
			pseudo = true;
			break;
		default:
			hdr = l4;
			pseudo = false;
			break;
		}
		old = nsim_ft_mangle_word(hdr, m);
		memcpy(&new, hdr + m->offset, sizeof(new));
		if (m->htype == FLOW_ACT_MANGLE_HDR_TYPE_IP4 &&
		    r->d.csum_flags & TCA_CSUM_UPDATE_FLAG_IPV4HDR)
			csum_replace4(&((struct iphdr *)l3)->check,
				      (__force __be32)old, (__force __be32)new);
		if (l4csum && l4check) {
			inet_proto_csum_replace4(l4check, skb,
						 (__force __be32)old,
						 (__force __be32)new, pseudo);
			if (r->d.key.ip_proto == IPPROTO_UDP && !*l4check)
				*l4check = CSUM_MANGLED_0;
		}
	}
}

/* Parse @skb (data after the Ethernet header, as eth_type_trans() left
 * it) into @key. Returns the offset of the L4 header from skb->data and
 * sets @l3off, or returns a negative value for a packet the engine does
 * not forward.
 */
static int nsim_ft_parse_skb(struct sk_buff *skb, struct nsim_ft_key *key,
			     unsigned int *l3off)
{
	__be16 proto = skb->protocol;
	unsigned int off = 0;
	int n = 0;

	if (skb_vlan_tag_present(skb)) {
		key->vlan_tpid[n] = skb->vlan_proto;
		key->vlan_id[n++] = skb_vlan_tag_get_id(skb);
	}
	while (eth_type_vlan(proto)) {
		struct vlan_hdr *vh;

		if (n == NSIM_FT_MAX_VLANS ||
		    !pskb_may_pull(skb, off + VLAN_HLEN))
			return -1;
		vh = (struct vlan_hdr *)(skb->data + off);
		key->vlan_tpid[n] = proto;
		key->vlan_id[n++] = ntohs(vh->h_vlan_TCI) & VLAN_VID_MASK;
		proto = vh->h_vlan_encapsulated_proto;
		off += VLAN_HLEN;
	}
	key->n_proto = proto;
	*l3off = off;

	switch (ntohs(proto)) {
	case ETH_P_IP: {
		const struct iphdr *iph;

		if (!pskb_may_pull(skb, off + sizeof(*iph)))
			return -1;
		iph = (struct iphdr *)(skb->data + off);
		/* Options, fragments and expiring TTLs go to the CPU. */
		if (iph->ihl != 5 || ip_is_fragment(iph) || iph->ttl <= 1)
			return -1;
		key->ip_proto = iph->protocol;
		key->src[0] = iph->saddr;
		key->dst[0] = iph->daddr;
		off += sizeof(*iph);
		break;
	}
	case ETH_P_IPV6: {
		const struct ipv6hdr *ip6h;

		if (!pskb_may_pull(skb, off + sizeof(*ip6h)))
			return -1;
		ip6h = (struct ipv6hdr *)(skb->data + off);
		if (ip6h->hop_limit <= 1)
			return -1;
		key->ip_proto = ip6h->nexthdr;
		memcpy(key->src, &ip6h->saddr, sizeof(key->src));
		memcpy(key->dst, &ip6h->daddr, sizeof(key->dst));
		off += sizeof(*ip6h);
		break;
	}
	default:
		return -1;
	}

	switch (key->ip_proto) {
	case IPPROTO_TCP: {
		const struct tcphdr *th;

		if (!pskb_may_pull(skb, off + sizeof(*th)))
			return -1;
		th = (struct tcphdr *)(skb->data + off);
		if (th->fin || th->rst)
			return -1;
		key->sport = th->source;
		key->dport = th->dest;
		break;
	}
	case IPPROTO_UDP: {
		const struct udphdr *uh;

		if (!pskb_may_pull(skb, off + sizeof(*uh)))
			return -1;
		uh = (struct udphdr *)(skb->data + off);
		key->sport = uh->source;
		key->dport = uh->dest;
		break;
	}
	default:
		return -1;
	}

	return off;
}

/**
 * nsim_ft_rx() - forward a received packet in "hardware"
 * @ns: the port the packet arrived on
 * @skb: the packet, data at the network header
 *
 * Context: NAPI.
 * Return: true if the flow engine consumed @skb.
 */
bool nsim_ft_rx(struct netdevsim *ns, struct sk_buff *skb)
{
	struct nsim_ft *ft = ns->nsim_dev->ft;
	struct nsim_ft_key key = {};
	unsigned int l3off, len;
	struct nsim_ft_rule *r;
	void *l3;
	int i, l4off;

	if (!ft || !READ_ONCE(ft->count) || READ_ONCE(ft->no_fwd))
		return false;

	l4off = nsim_ft_parse_skb(skb, &key, &l3off);
	if (l4off < 0)
		return false;
	key.port = ns;

	rcu_read_lock();
	r = rhashtable_lookup(&ft->keys, &key, nsim_ft_key_params);
	if (!r || !rcu_access_pointer(r->d.out_ns->peer))
		goto miss;

	/* From here on, offsets count from the Ethernet header. */
	len = skb->len - l3off;
	l3off += ETH_HLEN;
	l4off += ETH_HLEN;
	__skb_push(skb, ETH_HLEN);
	if (skb_ensure_writable(skb, l4off + (key.ip_proto == IPPROTO_TCP ?
					      sizeof(struct tcphdr) :
					      sizeof(struct udphdr)))) {
		__skb_pull(skb, ETH_HLEN);
		goto miss;
	}

	l3 = skb->data + l3off;
	nsim_ft_apply_mangles(skb, r, skb->data, l3, skb->data + l4off);
	/* A router decrements TTL as it forwards. */
	if (key.n_proto == htons(ETH_P_IP))
		ip_decrease_ttl(l3);
	else
		((struct ipv6hdr *)l3)->hop_limit--;

	for (i = 0; i < r->d.n_vlan_pop; i++)
		if (skb_vlan_pop(skb))
			goto drop;
	/* The core lists the tags to push outermost first (mtk_ppe_offload.c
	 * reads them so), unlike tc, where each push becomes the outer tag.
	 */
	for (i = r->d.n_vlan_push - 1; i >= 0; i--)
		if (skb_vlan_push(skb, r->d.vlan_push[i].proto,
				  r->d.vlan_push[i].tci))
			goto drop;

	atomic64_add(skb_is_gso(skb) ? skb_shinfo(skb)->gso_segs : 1,
		     &r->pkts);
	atomic64_add(len, &r->bytes);
	WRITE_ONCE(r->lastused, jiffies);

	nsim_hw_xmit(r->d.out_ns, skb);
	rcu_read_unlock();
	return true;

drop:
	rcu_read_unlock();
	kfree_skb(skb);
	return true;
miss:
	rcu_read_unlock();
	return false;
}

static void nsim_ft_print_addr(struct seq_file *s, const struct nsim_ft_key *k,
			       const void *addr, __be16 port)
{
	if (k->n_proto == htons(ETH_P_IP))
		seq_printf(s, "%pI4:%u", addr, ntohs(port));
	else
		seq_printf(s, "[%pI6c]:%u", addr, ntohs(port));
}

static int nsim_ft_rules_show(struct seq_file *s, void *unused)
{
	struct nsim_ft *ft = s->private;
	struct nsim_ft_rule *r;

	mutex_lock(&ft->lock);
	list_for_each_entry(r, &ft->rules, list) {
		const struct nsim_ft_key *k = &r->d.key;
		struct {
			struct ethhdr eth;
			u8 l3[sizeof(struct ipv6hdr)];
			__be16 ports[2];
		} h = {};
		bool v4 = k->n_proto == htons(ETH_P_IP);
		int i;

		/* Show the rewrites by applying them to the matched header. */
		if (v4) {
			memcpy(h.l3 + offsetof(struct iphdr, saddr), &k->src[0], 4);
			memcpy(h.l3 + offsetof(struct iphdr, daddr), &k->dst[0], 4);
		} else {
			memcpy(h.l3 + offsetof(struct ipv6hdr, saddr), k->src, 16);
			memcpy(h.l3 + offsetof(struct ipv6hdr, daddr), k->dst, 16);
		}
		h.ports[0] = k->sport;
		h.ports[1] = k->dport;
		for (i = 0; i < r->d.n_mangles; i++) {
			const struct nsim_ft_mangle *m = &r->d.mangles[i];

			switch (m->htype) {
			case FLOW_ACT_MANGLE_HDR_TYPE_ETH:
				nsim_ft_mangle_word(&h.eth, m);
				break;
			case FLOW_ACT_MANGLE_HDR_TYPE_IP4:
			case FLOW_ACT_MANGLE_HDR_TYPE_IP6:
				nsim_ft_mangle_word(h.l3, m);
				break;
			default:
				nsim_ft_mangle_word(h.ports, m);
				break;
			}
		}

		seq_printf(s, "in %s %s ", r->d.in_ns->netdev->name,
			   k->ip_proto == IPPROTO_TCP ? "tcp" : "udp");
		for (i = 0; i < r->d.n_vlans; i++)
			seq_printf(s, "vlan %u ", k->vlan_id[i]);
		nsim_ft_print_addr(s, k, k->src, k->sport);
		seq_puts(s, " > ");
		nsim_ft_print_addr(s, k, k->dst, k->dport);
		seq_printf(s, " -> out %s ", r->d.out_ns->netdev->name);
		for (i = 0; i < r->d.n_vlan_pop; i++)
			seq_puts(s, "pop-vlan ");
		for (i = 0; i < r->d.n_vlan_push; i++)
			seq_printf(s, "push-vlan %u ",
				   r->d.vlan_push[i].tci & VLAN_VID_MASK);
		nsim_ft_print_addr(s, k, h.l3 + (v4 ? offsetof(struct iphdr, saddr) :
						  offsetof(struct ipv6hdr, saddr)),
				   h.ports[0]);
		seq_puts(s, " > ");
		nsim_ft_print_addr(s, k, h.l3 + (v4 ? offsetof(struct iphdr, daddr) :
						  offsetof(struct ipv6hdr, daddr)),
				   h.ports[1]);
		seq_printf(s, " dst %pM src %pM packets %llu bytes %llu age_ms %u\n",
			   h.eth.h_dest, h.eth.h_source,
			   atomic64_read(&r->pkts), atomic64_read(&r->bytes),
			   jiffies_to_msecs(jiffies - r->created));
	}
	mutex_unlock(&ft->lock);

	return 0;
}
DEFINE_SHOW_ATTRIBUTE(nsim_ft_rules);

static u64 nsim_ft_occ_get(void *priv)
{
	struct nsim_ft *ft = priv;

	return READ_ONCE(ft->count);
}

int nsim_ft_create(struct nsim_dev *nsim_dev)
{
	struct devlink *devlink = priv_to_devlink(nsim_dev);
	struct nsim_ft *ft;
	int err;

	ft = kzalloc_obj(*ft);
	if (!ft)
		return -ENOMEM;
	ft->nsim_dev = nsim_dev;
	mutex_init(&ft->lock);
	INIT_LIST_HEAD(&ft->rules);
	err = devl_resource_size_get(devlink, NSIM_RESOURCE_FT_RULES, &ft->max);
	if (err)
		goto err_free;
	err = rhashtable_init(&ft->cookies, &nsim_ft_cookie_params);
	if (err)
		goto err_free;
	err = rhashtable_init(&ft->keys, &nsim_ft_key_params);
	if (err)
		goto err_cookies;

	ft->ddir = debugfs_create_dir("flowtable", nsim_dev->ddir);
	debugfs_create_file("rules", 0400, ft->ddir, ft, &nsim_ft_rules_fops);
	debugfs_create_bool("fail_bind", 0600, ft->ddir, &ft->fail_bind);
	debugfs_create_bool("fail_add", 0600, ft->ddir, &ft->fail_add);
	debugfs_create_bool("fail_del", 0600, ft->ddir, &ft->fail_del);
	debugfs_create_bool("fail_stats", 0600, ft->ddir, &ft->fail_stats);
	ft->fault = nsim_ft_fault_default;
	fault_create_debugfs_attr("fault", ft->ddir, &ft->fault);
	ft->fault_bind = nsim_ft_fault_default;
	fault_create_debugfs_attr("fault_bind", ft->ddir, &ft->fault_bind);
	debugfs_create_bool("no_fwd", 0600, ft->ddir, &ft->no_fwd);
	debugfs_create_u32("stale_on_unbind", 0400, ft->ddir,
			   &ft->stale_on_unbind);
	debugfs_create_atomic_t("replace_calls", 0600, ft->ddir,
				&ft->replace_calls);

	devl_resource_occ_get_register(devlink, NSIM_RESOURCE_FT_RULES,
				       nsim_ft_occ_get, ft);
	nsim_dev->ft = ft;
	return 0;

err_cookies:
	rhashtable_destroy(&ft->cookies);
err_free:
	mutex_destroy(&ft->lock);
	kfree(ft);
	return err;
}

void nsim_ft_destroy(struct nsim_dev *nsim_dev)
{
	struct nsim_ft *ft = nsim_dev->ft;

	devl_resource_occ_get_unregister(priv_to_devlink(nsim_dev),
					 NSIM_RESOURCE_FT_RULES);
	debugfs_remove_recursive(ft->ddir);
	nsim_dev->ft = NULL;
	/* Every port is gone, and with it every rule. */
	if (WARN_ON(!list_empty(&ft->rules))) {
		struct nsim_ft_rule *r, *tmp;

		mutex_lock(&ft->lock);
		list_for_each_entry_safe(r, tmp, &ft->rules, list)
			nsim_ft_rule_unlink(ft, r);
		mutex_unlock(&ft->lock);
	}
	rhashtable_destroy(&ft->keys);
	rhashtable_destroy(&ft->cookies);
	mutex_destroy(&ft->lock);
	kfree(ft);
}
