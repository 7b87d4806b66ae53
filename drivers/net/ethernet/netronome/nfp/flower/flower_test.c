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

/* The duplicate check and the firmware's host_cookie use the whole
 * cookie: tc and flowtable cookies are kernel pointers.
 */
static void nfp_fl_test_metadata_cookie(struct kunit *test)
{
	const unsigned long cookie = (unsigned long)test;
	struct nfp_fl_payload *installed, *dup, *other;
	struct nfp_flower_priv *priv;
	struct net_device *netdev;
	struct nfp_app *app;
	int err;

	if (BITS_PER_LONG < 64)
		kunit_skip(test, "cookies are 32 bits wide here");

	app = kunit_kzalloc(test, sizeof(*app), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, app);
	priv = kunit_kzalloc(test, sizeof(*priv), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, priv);
	/* Only compared as the flow's ingress device, never used. */
	netdev = kunit_kzalloc(test, sizeof(*netdev), GFP_KERNEL);
	KUNIT_ASSERT_NOT_NULL(test, netdev);
	app->priv = priv;
	priv->stats_ring_size = 4;
	KUNIT_ASSERT_EQ(test, nfp_flower_metadata_init(app, 4, 1), 0);

	installed = nfp_fl_test_payload(test);
	installed->tc_flower_cookie = cookie;
	installed->ingress_dev = netdev;
	KUNIT_ASSERT_EQ(test, rhashtable_insert_fast(&priv->flow_table,
						     &installed->fl_node,
						     nfp_flower_table_params),
			0);

	dup = nfp_fl_test_payload(test);
	err = nfp_compile_flow_metadata(app, cookie, dup, netdev, NULL);
	KUNIT_EXPECT_EQ(test, err, -EEXIST);
	if (!err)
		nfp_modify_flow_metadata(app, dup);

	other = nfp_fl_test_payload(test);
	err = nfp_compile_flow_metadata(app, cookie + 1, other, netdev, NULL);
	KUNIT_EXPECT_EQ(test, err, 0);
	KUNIT_EXPECT_EQ(test, be64_to_cpu(other->meta.host_cookie),
			(u64)(cookie + 1));
	if (!err)
		nfp_modify_flow_metadata(app, other);

	rhashtable_remove_fast(&priv->flow_table, &installed->fl_node,
			       nfp_flower_table_params);
	nfp_flower_metadata_cleanup(app);
}

/* A run of mangles ends at the last action of the list, whatever lies
 * beyond it: entries[2] exists but is not part of a list of two.
 */
static void nfp_fl_test_mangle_end(struct kunit *test)
{
	struct flow_rule *rule = flow_rule_alloc(3);
	struct flow_action *act;

	KUNIT_ASSERT_NOT_NULL(test, rule);
	act = &rule->action;
	act->entries[0].id = FLOW_ACTION_MANGLE;
	act->entries[1].id = FLOW_ACTION_MANGLE;
	act->entries[2].id = FLOW_ACTION_MANGLE;
	act->num_entries = 2;
	KUNIT_EXPECT_FALSE(test, nfp_fl_check_mangle_end(act, 0));
	KUNIT_EXPECT_TRUE(test, nfp_fl_check_mangle_end(act, 1));

	act->entries[1].id = FLOW_ACTION_REDIRECT;
	KUNIT_EXPECT_TRUE(test, nfp_fl_check_mangle_end(act, 0));
	KUNIT_EXPECT_FALSE(test, nfp_fl_check_mangle_end(act, 1));

	kfree(rule);
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
