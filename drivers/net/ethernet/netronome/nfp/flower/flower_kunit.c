// SPDX-License-Identifier: (GPL-2.0-only OR BSD-2-Clause)
/* KUnit tests for the parts of TC Flower offload that need no firmware. */

#include <kunit/test.h>
#include <linux/netdevice.h>
#include <net/flow_offload.h>

#include "main.h"

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
	/* Only compared as the flows' ingress device, never used. */
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

/* The duplicate check and the firmware's host_cookie use the whole
 * cookie: tc's cookies are kernel addresses.
 */
static void nfp_fl_test_metadata_cookie(struct kunit *test)
{
	const unsigned long cookie = (unsigned long)test;
	struct nfp_fl_payload *dup, *other;
	struct nfp_fl_test_meta *m;
	int err;

	if (BITS_PER_LONG < 64)
		kunit_skip(test, "cookies are 32 bits wide here");

	m = kunit_kzalloc(test, sizeof(*m), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, m);
	m->netdev = kunit_kzalloc(test, sizeof(*m->netdev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, m->netdev);
	m->app.priv = &m->priv;
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

	dup = nfp_fl_test_payload(test);
	err = nfp_compile_flow_metadata(&m->app, cookie, dup, m->netdev, NULL);
	KUNIT_EXPECT_EQ(test, err, -EEXIST);
	if (!err)
		nfp_modify_flow_metadata(&m->app, dup);

	other = nfp_fl_test_payload(test);
	err = nfp_compile_flow_metadata(&m->app, cookie + 1, other, m->netdev,
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

kunit_test_suite(nfp_fl_test_suite);
