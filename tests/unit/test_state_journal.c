/* SPDX-License-Identifier: MIT */
/*
 * The state file's journal (util/journal.c): replaying records onto a
 * snapshot gives what a full save would have written, whatever happened in
 * between; a torn last line, a foreign epoch and a snapshot from before the
 * journal existed are all handled as the loader needs them.
 */
#include <errno.h>
#include <json-c/json.h>
#include <stdlib.h>
#include <string.h>

#include <CUnit/Basic.h>

#include "backend/backend.h"
#include "util/config.h"
#include "backend/iommufd_uapi.h"
#include "util/journal.h"
#include "test_rng.h"
#include "unit_run.h"

#define PAGE 4096ULL

static struct config cfg;

static void cfg_setup(void)
{
	config_defaults(&cfg);
	cfg.n_devices = 3;
	strcpy(cfg.devices[0].name, "vtd0");
	cfg.devices[0].kind = DEVICE_KIND_VTD;
	strcpy(cfg.devices[1].name, "st0");
	cfg.devices[1].kind = DEVICE_KIND_SELFTEST;
	strcpy(cfg.devices[2].name, "vtd1");
	cfg.devices[2].kind = DEVICE_KIND_VTD;
}

/* The journal text for records (header of epoch, one record per line). */
static char *journal_text(uint64_t epoch, struct json_object *records, size_t *len)
{
	size_t cap = 64, n = 0;
	char *buf = malloc(cap);

	CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
	n = journal_header(buf, cap, epoch);
	for (size_t i = 0; i < json_object_array_length(records); i++) {
		const char *line = json_object_to_json_string_ext(
		    json_object_array_get_idx(records, i), JSON_C_TO_STRING_PLAIN);
		size_t l = strlen(line);

		if (n + l + 2 > cap) {
			cap = 2 * (n + l + 2);
			buf = realloc(buf, cap);
			CU_ASSERT_PTR_NOT_NULL_FATAL(buf);
		}
		memcpy(buf + n, line, l);
		buf[n + l] = '\n';
		n += l + 1;
	}
	buf[n] = '\0';
	*len = n;
	return buf;
}

static struct json_object *parse(const char *text)
{
	struct json_object *o = json_tokener_parse(text);

	CU_ASSERT_PTR_NOT_NULL_FATAL(o);
	return o;
}

static void assert_json(struct json_object *got, const char *want)
{
	struct json_object *w = parse(want);

	if (!json_object_equal(got, w))
		fprintf(stderr, "\n got  %s\n want %s\n",
			json_object_to_json_string_ext(got, JSON_C_TO_STRING_PLAIN),
			json_object_to_json_string_ext(w, JSON_C_TO_STRING_PLAIN));
	CU_ASSERT(json_object_equal(got, w));
	json_object_put(w);
}

/* Replace, delete, add (numeric keys come back sorted), merge. */
static void test_records(void)
{
	struct json_object *root =
	    parse("{\"hwpts\":[{\"id\":3,\"x\":1},{\"id\":5,\"x\":2}],"
		  "\"devs\":[{\"name\":\"b\",\"a\":0},{\"name\":\"a\",\"a\":0}],"
		  "\"backend_state\":{\"objects\":[{\"id\":1}],\"next_id\":2}}");
	struct json_object *recs = json_object_new_array(), *m = json_object_new_object();
	const char *why;
	size_t len;
	char *text;

	CU_ASSERT_EQUAL(journal_rec_replace(recs, "hwpts", "id", json_object_new_int64(5),
					    parse("[{\"id\":5,\"x\":9}]")),
			0);
	CU_ASSERT_EQUAL(journal_rec_replace(recs, "hwpts", "id", json_object_new_int64(1),
					    parse("[{\"id\":1,\"x\":7}]")),
			0);
	CU_ASSERT_EQUAL(journal_rec_replace(recs, "hwpts", "id", json_object_new_int64(3),
					    json_object_new_array()),
			0);
	CU_ASSERT_EQUAL(journal_rec_replace(recs, "devs", "name", json_object_new_string("a"),
					    parse("[{\"name\":\"a\",\"a\":4}]")),
			0);
	CU_ASSERT_EQUAL(journal_rec_replace(recs, "backend_state.objects", "id",
					    json_object_new_int64(4), parse("[{\"id\":4}]")),
			0);
	/* A section the snapshot does not have yet (older files had no "mappings"). */
	CU_ASSERT_EQUAL(journal_rec_replace(
			    recs, "mappings", "device", json_object_new_string("a"),
			    parse("[{\"device\":\"a\",\"iova\":1},{\"device\":\"a\",\"iova\":2}]")),
			0);
	json_object_object_add(m, "next_id", json_object_new_int64(5));
	CU_ASSERT_EQUAL(journal_rec_merge(recs, "backend_state", m), 0);
	text = journal_text(42, recs, &len);
	CU_ASSERT_EQUAL(journal_replay(root, text, len, 42, &why), 7);
	CU_ASSERT_PTR_NULL(why);
	assert_json(root,
		    "{\"hwpts\":[{\"id\":1,\"x\":7},{\"id\":5,\"x\":9}],"
		    "\"devs\":[{\"name\":\"b\",\"a\":0},{\"name\":\"a\",\"a\":4}],"
		    "\"backend_state\":{\"objects\":[{\"id\":1},{\"id\":4}],\"next_id\":5},"
		    "\"mappings\":[{\"device\":\"a\",\"iova\":1},{\"device\":\"a\",\"iova\":2}]}");
	/* Idempotent: the same journal on the state it produced changes nothing. */
	CU_ASSERT_EQUAL(journal_replay(root, text, len, 42, &why), 7);
	assert_json(root,
		    "{\"hwpts\":[{\"id\":1,\"x\":7},{\"id\":5,\"x\":9}],"
		    "\"devs\":[{\"name\":\"b\",\"a\":0},{\"name\":\"a\",\"a\":4}],"
		    "\"backend_state\":{\"objects\":[{\"id\":1},{\"id\":4}],\"next_id\":5},"
		    "\"mappings\":[{\"device\":\"a\",\"iova\":1},{\"device\":\"a\",\"iova\":2}]}");
	free(text);
	json_object_put(recs);
	json_object_put(root);
}

/* A torn last line stops the replay before it; the records before it stand. */
static void test_torn_and_foreign(void)
{
	struct json_object *root = parse("{\"hwpts\":[]}");
	struct json_object *recs = json_object_new_array();
	const char *why;
	size_t len;
	char *text;

	journal_rec_replace(recs, "hwpts", "id", json_object_new_int64(1), parse("[{\"id\":1}]"));
	journal_rec_replace(recs, "hwpts", "id", json_object_new_int64(2), parse("[{\"id\":2}]"));
	text = journal_text(7, recs, &len);
	/* Cut inside the second record: only the first applies. */
	CU_ASSERT_EQUAL(journal_replay(root, text, len - 6, 7, &why), 1);
	CU_ASSERT_PTR_NOT_NULL(why);
	assert_json(root, "{\"hwpts\":[{\"id\":1}]}");
	/* The journal of another snapshot: ignored. */
	json_object_put(root);
	root = parse("{\"hwpts\":[]}");
	CU_ASSERT_EQUAL(journal_replay(root, text, len, 8, &why), 0);
	CU_ASSERT_PTR_NOT_NULL(why);
	assert_json(root, "{\"hwpts\":[]}");
	/* No header at all: refused. */
	CU_ASSERT_EQUAL(journal_replay(root, "{\"s\":1}\n", 8, 7, &why), -EINVAL);
	free(text);
	json_object_put(recs);
	json_object_put(root);
}

static struct json_object *full_save(struct backend *be)
{
	struct json_object *root = json_object_new_object(), *bs = json_object_new_object();

	CU_ASSERT_FATAL(be->ops->save(be, bs) == 0);
	json_object_object_add(root, "backend_state", bs);
	return root;
}

/* One random operation on the sim; failures are part of the game. */
static void random_op(struct backend *be, uint32_t *ids, uint32_t *n)
{
	static const char *const devs[] = {"vtd0", "st0", "vtd1"};
	const char *dev = devs[rnd_below(3)];
	struct iommu_hwpt_vtd_s1 v = {.addr_width = 48, .pgtbl_addr = 0x1000};
	struct iommu_hwpt_selftest s = {.iotlb = 0x77};
	struct backend_alloc a = {
	    .data_type = IOMMU_HWPT_DATA_VTD_S1, .data = &v, .data_len = sizeof(v)};
	uint32_t id = *n ? ids[rnd_below(*n)] : 1, out;
	struct iommu_hwpt_vtd_s1_invalidate e = {.addr = rnd_below(64) * PAGE,
						 .npages = 1 + rnd_below(32)};
	struct backend_inv inv = {.hwpt_id = id,
				  .data_type = IOMMU_HWPT_INVALIDATE_DATA_VTD_S1,
				  .entry_len = sizeof(e),
				  .entry_num = 1,
				  .entries = &e};
	struct backend_fault f = {.hwpt_id = id, .mode = FAULT_AT_INDEX, .error = -EIO, .count = 1};

	switch (rnd_below(9)) {
	case 0:
	case 1:
		if (!strcmp(dev, "st0"))
			a = (struct backend_alloc){.data_type = IOMMU_HWPT_DATA_SELFTEST,
						   .data = &s,
						   .data_len = sizeof(s)};
		if (!be->ops->alloc_nested(be, dev, &a, &out, NULL) && *n < 256)
			ids[(*n)++] = out;
		break;
	case 2:
		if (!be->ops->destroy(be, id))
			for (uint32_t i = 0; i < *n; i++)
				if (ids[i] == id)
					ids[i] = ids[--*n];
		break;
	case 3:
		be->ops->attach(be, dev, id);
		break;
	case 4:
		be->ops->detach(be, dev);
		break;
	case 5:
		be->ops->sim_populate(be, id, rnd_below(64) * PAGE, 1 + rnd_below(64),
				      1 + rnd_below(2));
		break;
	case 6:
		be->ops->invalidate(be, &inv);
		break;
	case 7:
		be->ops->map_memory(be, dev, (1ULL << 30) + rnd_below(16) * 2 * PAGE, PAGE, -1, 0,
				    IOMMU_IOAS_MAP_READABLE);
		break;
	default:
		be->ops->inject_fault(be, &f);
		break;
	}
}

/*
 * The property the loader relies on: snapshot + replayed deltas == the
 * full save at the end, over random sequences of every state-changing
 * operation, with deltas taken at random points.
 */
static void test_sim_deltas_match_full_save(void)
{
	for (uint64_t seed = 1; seed <= 40; seed++) {
		struct backend *be = NULL;
		struct json_object *root, *recs = json_object_new_array(), *bs, *want;
		const char *err;
		uint32_t ids[256], n = 0;
		size_t len;
		char *text;
		long applied;

		rng_seed(seed);
		CU_ASSERT_FATAL(backend_sim_open(&cfg, &be, &err) == 0);
		root = full_save(be);
		for (int i = 0; i < 300; i++) {
			random_op(be, ids, &n);
			if (!rnd_below(4)) {
				bs = json_object_new_array();
				CU_ASSERT_FATAL(be->ops->save_delta(be, bs) == 0);
				for (size_t k = 0; k < json_object_array_length(bs); k++) {
					struct json_object *r = json_object_array_get_idx(bs, k);

					json_object_array_add(recs, json_object_get(r));
				}
				json_object_put(bs);
			}
		}
		bs = json_object_new_array();
		CU_ASSERT_FATAL(be->ops->save_delta(be, bs) == 0);
		for (size_t k = 0; k < json_object_array_length(bs); k++)
			json_object_array_add(recs,
					      json_object_get(json_object_array_get_idx(bs, k)));
		json_object_put(bs);
		text = journal_text(seed, recs, &len);
		applied = journal_replay(root, text, len, seed, &err);
		CU_ASSERT_EQUAL(applied, (long)json_object_array_length(recs));
		want = full_save(be);
		/* The anchor is written by full saves only, and is the same. */
		if (!json_object_equal(root, want))
			fprintf(stderr, "\nseed %llu:\n got  %s\n want %s\n",
				(unsigned long long)seed,
				json_object_to_json_string_ext(root, JSON_C_TO_STRING_PLAIN),
				json_object_to_json_string_ext(want, JSON_C_TO_STRING_PLAIN));
		CU_ASSERT(json_object_equal(root, want));
		free(text);
		json_object_put(want);
		json_object_put(root);
		json_object_put(recs);
		be->ops->close(be);
	}
}

int main(void)
{
	static const struct unit_case tests[] = {
	    {"records", test_records},
	    {"torn_and_foreign", test_torn_and_foreign},
	    {"sim_deltas_match_full_save", test_sim_deltas_match_full_save},
	};

	cfg_setup();
	return unit_run("state_journal", UNIT_CASES(tests));
}
