// SPDX-License-Identifier: MIT
/*
 * The sim's fault objects against the kernel's rules (Linux 6.12
 * iommufd/fault.c and hw_pagetable.c, 7.x eventq.c, selftest.c
 * iommufd_test_trigger_iopf()): fault_id lookup at alloc, the object's
 * references (fd, HWPTs), cookies as xa_alloc hands them out, response
 * validation, auto response when the device leaves, and a descriptor that
 * polls readable exactly while records wait.
 */
#include <errno.h>
#include <json-c/json.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "backend/backend.h"
#include "backend/iommufd_uapi.h"
#include "util/config.h"
#include "unit_run.h"

static struct config cfg;
static struct backend *be;

static void sim_up(void)
{
	const char *err = NULL;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.backend, "sim");
	strcpy(cfg.devices[0].name, "vtd0");
	cfg.devices[0].kind = DEVICE_KIND_VTD;
	strcpy(cfg.devices[1].name, "mock0");
	cfg.devices[1].kind = DEVICE_KIND_SELFTEST;
	strcpy(cfg.devices[2].name, "mock1");
	cfg.devices[2].kind = DEVICE_KIND_SELFTEST;
	cfg.n_devices = 3;
	CU_ASSERT_FATAL(backend_sim_open(&cfg, &be, &err) == 0);
}

static int alloc_mock(const char *dev, uint32_t flags, uint32_t fault_id, uint32_t *id)
{
	struct iommu_hwpt_selftest d = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct backend_alloc req = {.data_type = IOMMU_HWPT_DATA_SELFTEST,
				    .flags = flags,
				    .data = &d,
				    .data_len = sizeof(d),
				    .fault_id = fault_id};

	return be->ops->alloc_nested(be, dev, &req, id, NULL);
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static int trigger(const char *dev, uint32_t grpid)
{
	struct backend_iopf t = {.pasid = 0, .grpid = grpid, .perm = 1, .addr = 0x1000};

	return be->ops->trigger_iopf(be, dev, &t);
}

static int respond(const struct backend_fault_queue *q, uint32_t cookie, uint32_t code)
{
	struct iommu_hwpt_page_response r = {.cookie = cookie, .code = code};

	return be->ops->fault_respond(be, q, &r);
}

static void test_alloc_rules(void)
{
	struct backend_fault_queue q;
	uint32_t plain, id;

	sim_up();
	CU_ASSERT_EQUAL_FATAL(be->ops->fault_alloc(be, &q), 0);
	CU_ASSERT_EQUAL_FATAL(alloc_mock("mock0", 0, 0, &plain), 0);
	/* iommufd_get_fault(): anything but a fault object is -ENOENT. */
	CU_ASSERT_EQUAL(alloc_mock("mock0", IOMMU_HWPT_FAULT_ID_VALID, plain, &id), -ENOENT);
	CU_ASSERT_EQUAL(alloc_mock("mock0", IOMMU_HWPT_FAULT_ID_VALID, 999, &id), -ENOENT);
	/* Without the flag the id is not looked at. */
	CU_ASSERT_EQUAL(alloc_mock("mock0", 0, 999, &id), 0);
	CU_ASSERT_EQUAL(alloc_mock("mock0", IOMMU_HWPT_FAULT_ID_VALID, q.id, &id), 0);
	/* A fault object is no page table: attach -EINVAL, invalidate refuses it. */
	CU_ASSERT_EQUAL(be->ops->attach(be, "mock0", q.id), -EINVAL);
	/* Its HWPT holds it: -EBUSY (the fd is closed by then), then it goes. */
	CU_ASSERT_EQUAL(be->ops->fault_free(be, &q), -EBUSY);
	CU_ASSERT_EQUAL(be->ops->destroy(be, id), 0);
	CU_ASSERT_EQUAL(be->ops->destroy(be, q.id), 0);
	CU_ASSERT_EQUAL(be->ops->destroy(be, q.id), -ENOENT);
	be->ops->close(be);
}

/* The modelled VT-d devices have no PRI: a fault-capable HWPT does not take them. */
static void test_vtd_no_pri(void)
{
	struct iommu_hwpt_vtd_s1 v = {.pgtbl_addr = 0x100000, .addr_width = 48};
	struct backend_alloc req = {.data_type = IOMMU_HWPT_DATA_VTD_S1,
				    .flags = IOMMU_HWPT_FAULT_ID_VALID,
				    .data = &v,
				    .data_len = sizeof(v)};
	struct backend_fault_queue q;
	uint32_t id;

	sim_up();
	CU_ASSERT_EQUAL_FATAL(be->ops->fault_alloc(be, &q), 0);
	req.fault_id = q.id;
	CU_ASSERT_EQUAL_FATAL(be->ops->alloc_nested(be, "vtd0", &req, &id, NULL), 0);
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", id), -ENODEV);
	/* Before the stage-1 checks: a bad address width changes nothing. */
	v.addr_width = 39;
	CU_ASSERT_EQUAL_FATAL(be->ops->alloc_nested(be, "vtd0", &req, &id, NULL), 0);
	CU_ASSERT_EQUAL(be->ops->attach(be, "vtd0", id), -ENODEV);
	be->ops->close(be);
}

static void test_delivery_and_cookies(void)
{
	struct backend_fault_queue q;
	struct iommu_hwpt_pgfault r[4];
	uint32_t id;

	sim_up();
	CU_ASSERT_EQUAL_FATAL(be->ops->fault_alloc(be, &q), 0);
	CU_ASSERT_EQUAL_FATAL(alloc_mock("mock0", IOMMU_HWPT_FAULT_ID_VALID, q.id, &id), 0);
	/* Not attached: the core answers it, nothing is queued, the op is 0. */
	CU_ASSERT_EQUAL(trigger("mock0", 1), 0);
	CU_ASSERT(!readable(q.fd));
	CU_ASSERT_EQUAL(be->ops->fault_read(be, &q, r, 4), 0);
	/* Only the mock takes the op. */
	CU_ASSERT_EQUAL(trigger("vtd0", 1), -EINVAL);
	CU_ASSERT_EQUAL(trigger("nosuch", 1), -ENODEV);
	CU_ASSERT_EQUAL_FATAL(be->ops->attach(be, "mock0", id), 0);
	CU_ASSERT_EQUAL(trigger("mock0", 7), 0);
	CU_ASSERT_EQUAL(trigger("mock0", 8), 0);
	CU_ASSERT_EQUAL(trigger("mock0", 9), 0);
	CU_ASSERT(readable(q.fd));
	/* A buffer too small for the first group is -EINVAL. */
	CU_ASSERT_EQUAL(be->ops->fault_read(be, &q, r, 0), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->fault_read(be, &q, r, 2), 2);
	CU_ASSERT(readable(q.fd));
	CU_ASSERT_EQUAL(r[0].grpid, 7);
	CU_ASSERT_EQUAL(r[0].cookie, 1);
	CU_ASSERT_EQUAL(r[1].cookie, 2);
	CU_ASSERT_EQUAL(r[0].flags, IOMMU_PGFAULT_FLAGS_LAST_PAGE); /* pasid 0: not valid */
	CU_ASSERT_STRING_EQUAL(be->ops->dev_id_name(be, r[0].dev_id), "mock0");
	CU_ASSERT_PTR_NULL(be->ops->dev_id_name(be, 0));
	/* Answer cookie 1: the next group gets it back (lowest free). */
	CU_ASSERT_EQUAL(respond(&q, 1, 2), -EINVAL); /* unknown code */
	CU_ASSERT_EQUAL(respond(&q, 1, IOMMUFD_PAGE_RESP_SUCCESS), 0);
	CU_ASSERT_EQUAL(respond(&q, 1, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->fault_read(be, &q, r, 4), 1);
	CU_ASSERT_EQUAL(r[0].grpid, 9);
	CU_ASSERT_EQUAL(r[0].cookie, 1);
	CU_ASSERT(!readable(q.fd));
	/* Leaving the HWPT answers the device's groups: their cookies are gone. */
	CU_ASSERT_EQUAL(trigger("mock0", 10), 0);
	CU_ASSERT_EQUAL_FATAL(be->ops->detach(be, "mock0"), 0);
	CU_ASSERT(!readable(q.fd));
	CU_ASSERT_EQUAL(respond(&q, 1, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
	CU_ASSERT_EQUAL(respond(&q, 2, IOMMUFD_PAGE_RESP_INVALID), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->destroy(be, id), 0);
	CU_ASSERT_EQUAL(be->ops->fault_free(be, &q), 0);
	be->ops->close(be);
}

static int take_once(void *ctx, const char *name)
{
	int *fd = ctx, got = *fd;

	CU_ASSERT_STRING_EQUAL(name, "sim");
	*fd = -1;
	return got;
}

/*
 * Fault objects are kept across a restart, as the kernel keeps them in
 * the stored iommufd: the group triggered and not read yet is read after
 * the restore, one read before it is still answerable by its cookie, the
 * HWPT still delivers to the object, and the object stays in use (-EBUSY)
 * while its HWPT lives.
 */
static void test_restart(void)
{
	struct json_object *o = json_object_new_object();
	struct iommu_hwpt_pgfault rec, rec2;
	struct backend_fault_queue q, q2;
	struct backend *a, *b;
	struct backend_fd f;
	const char *err = NULL;
	uint32_t id;
	int fd;

	sim_up();
	a = be;
	CU_ASSERT_EQUAL_FATAL(a->ops->fault_alloc(a, &q), 0);
	CU_ASSERT_EQUAL_FATAL(alloc_mock("mock0", IOMMU_HWPT_FAULT_ID_VALID, q.id, &id), 0);
	CU_ASSERT_EQUAL_FATAL(a->ops->attach(a, "mock0", id), 0);
	CU_ASSERT_EQUAL(trigger("mock0", 1), 0);
	CU_ASSERT_EQUAL(a->ops->fault_read(a, &q, &rec, 1), 1); /* delivered, unanswered */
	CU_ASSERT_EQUAL(trigger("mock0", 2), 0);		/* queued, unread */
	CU_ASSERT_EQUAL_FATAL(a->ops->save(a, o), 0);
	CU_ASSERT_FATAL(a->ops->stored_fds(a, &f, 1) == 1);
	fd = dup(f.fd);
	sim_up();
	b = be;
	CU_ASSERT_EQUAL_FATAL(b->ops->restore(b, o, take_once, &fd, &err), 0);
	CU_ASSERT(b->ops->has_hwpt(b, id));
	CU_ASSERT_EQUAL(b->ops->fault_reopen(b, q.id + 100, -1, &q2), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(b->ops->fault_reopen(b, q.id, -1, &q2), 0);
	CU_ASSERT_EQUAL(q2.id, q.id);
	CU_ASSERT(q2.fd >= 0 && q2.fd != q.fd);
	/* The unread group, with the next cookie (the first one is still taken). */
	CU_ASSERT_EQUAL(b->ops->fault_read(b, &q2, &rec2, 1), 1);
	CU_ASSERT_EQUAL(rec2.grpid, 2);
	CU_ASSERT_NOT_EQUAL(rec2.cookie, rec.cookie);
	CU_ASSERT_EQUAL(respond(&q2, rec.cookie, IOMMUFD_PAGE_RESP_SUCCESS), 0);
	CU_ASSERT_EQUAL(respond(&q2, rec.cookie, IOMMUFD_PAGE_RESP_SUCCESS), -EINVAL);
	/* The HWPT still delivers to it; its cookie is the lowest free, rec's again. */
	CU_ASSERT_EQUAL(trigger("mock0", 3), 0);
	CU_ASSERT_EQUAL(b->ops->fault_read(b, &q2, &rec, 1), 1);
	CU_ASSERT_EQUAL(rec.grpid, 3);
	CU_ASSERT_EQUAL(b->ops->destroy(b, id), -EBUSY);     /* still attached */
	CU_ASSERT_EQUAL(b->ops->fault_free(b, &q2), -EBUSY); /* the HWPT uses it */
	CU_ASSERT_EQUAL(b->ops->detach(b, "mock0"), 0);
	CU_ASSERT_EQUAL(b->ops->destroy(b, id), 0);
	CU_ASSERT_EQUAL(b->ops->destroy(b, q.id), 0); /* its fd closed by fault_free already */
	json_object_put(o);
	a->ops->close(a);
	b->ops->close(b);
}

static const struct unit_case tests[] = {
    {"fault object: alloc, references", test_alloc_rules},
    {"fault object: VT-d without PRI", test_vtd_no_pri},
    {"fault object: delivery, cookies, responses", test_delivery_and_cookies},
    {"fault object: kept across a restart", test_restart},
};

int main(void)
{
	return unit_run("sim_iopf", UNIT_CASES(tests));
}
