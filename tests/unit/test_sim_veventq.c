// SPDX-License-Identifier: MIT
/*
 * The sim's vEVENTQs against the 7.x kernel's rules (eventq.c
 * iommufd_veventq_alloc() and iommufd_veventq_fops_read(), driver.c
 * iommufd_viommu_report_event(), iommufd_private.h
 * iommufd_vevent_handler(), selftest.c iommufd_test_trigger_vevent()):
 * the alloc checks and their errnos, the fd's reference and the vIOMMU's,
 * whole-record reads, sequence numbers, the LOST_EVENTS header at the
 * tail (with the latest sequence, gone when the next record comes), the
 * trigger's preconditions, and a descriptor readable exactly while
 * records wait. 6.12 rules: -ENOTTY.
 */
#include <errno.h>
#include <poll.h>
#include <string.h>
#include <unistd.h>

#include <CUnit/Basic.h>

#include "backend/backend.h"
#include "backend/iommufd_uapi.h"
#include "backend/sim/state.h"
#include "backend/veventq_uapi.h"
#include "backend/viommu_uapi.h"
#include "util/config.h"
#include "unit_run.h"

#define ST_Q NESTD_VEVENTQ_TYPE_SELFTEST
#define HSZ  sizeof(struct nestd_vevent_header)
#define REC  (HSZ + sizeof(struct nestd_vevent_selftest))

static struct config cfg;
static struct backend *be;

static void sim_up(enum kernel_rules rules)
{
	const char *err = NULL;

	memset(&cfg, 0, sizeof(cfg));
	strcpy(cfg.backend, "sim");
	strcpy(cfg.devices[0].name, "mock0");
	cfg.devices[0].kind = DEVICE_KIND_SELFTEST;
	strcpy(cfg.devices[1].name, "vtd0");
	cfg.devices[1].kind = DEVICE_KIND_VTD;
	cfg.n_devices = 2;
	cfg.sim_kernel = rules;
	CU_ASSERT_FATAL(backend_sim_open(&cfg, &be, &err) == 0);
}

static uint32_t viommu(void)
{
	uint32_t v = 0;

	CU_ASSERT_FATAL(
	    be->ops->viommu_alloc(be, "mock0", NESTD_VIOMMU_TYPE_SELFTEST, 0, &v, NULL) == 0);
	return v;
}

/* The mock's trigger needs the device attached to a nested HWPT on v through its vDEVICE. */
static uint32_t attach_through(uint32_t v, uint64_t virt_id)
{
	struct iommu_hwpt_selftest d = {.iotlb = IOMMU_TEST_IOTLB_DEFAULT};
	struct backend_alloc req = {.data_type = IOMMU_HWPT_DATA_SELFTEST,
				    .data = &d,
				    .data_len = sizeof(d),
				    .viommu_id = v};
	uint32_t vdev = 0, hwpt = 0;

	CU_ASSERT_FATAL(be->ops->vdevice_alloc(be, v, "mock0", virt_id, &vdev) == 0);
	CU_ASSERT_FATAL(be->ops->alloc_nested(be, "mock0", &req, &hwpt, NULL) == 0);
	CU_ASSERT_FATAL(be->ops->attach(be, "mock0", hwpt) == 0);
	return hwpt;
}

static bool readable(int fd)
{
	struct pollfd p = {.fd = fd, .events = POLLIN};

	return poll(&p, 1, 0) == 1 && (p.revents & POLLIN);
}

static struct nestd_vevent_header hdr_at(const uint8_t *buf, size_t rec)
{
	struct nestd_vevent_header h;

	memcpy(&h, buf + rec, HSZ);
	return h;
}

static uint32_t virt_at(const uint8_t *buf, size_t rec)
{
	uint32_t id;

	memcpy(&id, buf + rec + HSZ, sizeof(id));
	return id;
}

static void test_no_veventq_on_6_12(void)
{
	struct backend_veventq q;

	sim_up(KERNEL_RULES_6_12);
	CU_ASSERT_EQUAL(be->ops->veventq_alloc(be, 1, ST_Q, 2, &q), -ENOTTY);
	be->ops->close(be);
}

static void test_alloc_rules(void)
{
	struct backend_veventq q, q2;
	uint32_t v;

	sim_up(KERNEL_RULES_7);
	v = viommu();
	CU_ASSERT_EQUAL(be->ops->veventq_alloc(be, v, NESTD_VEVENTQ_TYPE_DEFAULT, 2, &q),
			-EOPNOTSUPP);
	CU_ASSERT_EQUAL(be->ops->veventq_alloc(be, v, ST_Q, 0, &q), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->veventq_alloc(be, v, ST_Q, NESTD_VEVENTQ_MAX_DEPTH + 1, &q),
			-EINVAL);
	CU_ASSERT_EQUAL(be->ops->veventq_alloc(be, v + 100, ST_Q, 2, &q), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(be->ops->veventq_alloc(be, v, ST_Q, NESTD_VEVENTQ_MAX_DEPTH, &q), 0);
	CU_ASSERT(q.fd >= 0);
	CU_ASSERT_EQUAL(be->ops->veventq_alloc(be, v, ST_Q, 2, &q2), -EEXIST);
	/* A vEVENTQ is not a vIOMMU, and any other type is taken (the core asks no driver). */
	CU_ASSERT_EQUAL(be->ops->veventq_alloc(be, q.id, ST_Q, 2, &q2), -ENOENT);
	CU_ASSERT_EQUAL_FATAL(be->ops->veventq_alloc(be, v, NESTD_VEVENTQ_TYPE_ARM_SMMUV3, 2, &q2),
			      0);
	/* References: the fd holds the vEVENTQ, the vEVENTQ its vIOMMU. */
	CU_ASSERT_EQUAL(be->ops->destroy_object(be, q.id), -EBUSY);
	CU_ASSERT_EQUAL(be->ops->destroy_object(be, v), -EBUSY);
	/* Not a HWPT to attach to. */
	CU_ASSERT_EQUAL(be->ops->attach(be, "mock0", q.id), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->veventq_free(be, &q), 0);
	CU_ASSERT_EQUAL(be->ops->destroy_object(be, q.id), -ENOENT);
	CU_ASSERT_EQUAL(be->ops->destroy_object(be, v), -EBUSY);
	CU_ASSERT_EQUAL(be->ops->veventq_free(be, &q2), 0);
	CU_ASSERT_EQUAL(be->ops->destroy_object(be, v), 0);
	be->ops->close(be);
}

static void test_trigger_rules(void)
{
	struct backend_veventq q;
	uint32_t v;

	sim_up(KERNEL_RULES_7);
	v = viommu();
	CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "vtd0"), -EINVAL); /* not a mock */
	CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "nosuch"),
			-ENODEV);					/* as the sim's other ops */
	CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), -ENOENT); /* on its nest parent */
	attach_through(v, 0x99);
	CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), -EOPNOTSUPP); /* no queue */
	CU_ASSERT_EQUAL_FATAL(be->ops->veventq_alloc(be, v, NESTD_VEVENTQ_TYPE_ARM_SMMUV3, 2, &q),
			      0);
	CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), -EOPNOTSUPP); /* not its type */
	be->ops->close(be);

	/* virt_id 0 reads as "no vDEVICE" in the mock (!mdev->vdev_id). */
	sim_up(KERNEL_RULES_7);
	v = viommu();
	CU_ASSERT_EQUAL_FATAL(be->ops->veventq_alloc(be, v, ST_Q, 2, &q), 0);
	attach_through(v, 0);
	CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), -ENOENT);
	be->ops->close(be);
}

/* Whole records only: under a header, under the first record, what fits. */
static void test_read_rules(void)
{
	struct backend_veventq q;
	uint8_t buf[8 * REC];
	uint32_t v;

	sim_up(KERNEL_RULES_7);
	v = viommu();
	CU_ASSERT_EQUAL_FATAL(be->ops->veventq_alloc(be, v, ST_Q, 8, &q), 0);
	attach_through(v, 0x99);
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, 0), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, HSZ - 1), -EINVAL);
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, sizeof(buf)), 0);
	CU_ASSERT(!readable(q.fd));
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), 0);
	CU_ASSERT(readable(q.fd));
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, HSZ), -EINVAL);
	/* Room for one and a half: one record. */
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, REC + REC / 2), (int)REC);
	CU_ASSERT_EQUAL(hdr_at(buf, 0).sequence, 0);
	CU_ASSERT_EQUAL(hdr_at(buf, 0).flags, 0);
	CU_ASSERT_EQUAL(virt_at(buf, 0), 0x99);
	CU_ASSERT(readable(q.fd));
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, sizeof(buf)), (int)(2 * REC));
	CU_ASSERT_EQUAL(hdr_at(buf, 0).sequence, 1);
	CU_ASSERT_EQUAL(hdr_at(buf, REC).sequence, 2);
	CU_ASSERT(!readable(q.fd));
	be->ops->close(be);
}

/*
 * Past depth: the LOST_EVENTS header at the tail takes each new sequence
 * number; a record that fits again replaces it (the gap says the rest).
 */
static void test_overflow(void)
{
	struct backend_veventq q;
	uint8_t buf[8 * REC];
	uint32_t v;

	sim_up(KERNEL_RULES_7);
	v = viommu();
	CU_ASSERT_EQUAL_FATAL(be->ops->veventq_alloc(be, v, ST_Q, 2, &q), 0);
	attach_through(v, 0x77);
	for (int i = 0; i < 5; i++)
		CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), 0);
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, sizeof(buf)), (int)(2 * REC + HSZ));
	CU_ASSERT_EQUAL(hdr_at(buf, 0).sequence, 0);
	CU_ASSERT_EQUAL(hdr_at(buf, REC).sequence, 1);
	CU_ASSERT_EQUAL(hdr_at(buf, 2 * REC).flags, NESTD_VEVENTQ_FLAG_LOST_EVENTS);
	CU_ASSERT_EQUAL(hdr_at(buf, 2 * REC).sequence, 4);
	CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), 0);
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, sizeof(buf)), (int)REC);
	CU_ASSERT_EQUAL(hdr_at(buf, 0).flags, 0);
	CU_ASSERT_EQUAL(hdr_at(buf, 0).sequence, 5);

	/* depth 2 again full: 6, 7, LOST(8); read one record, then one more comes. */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), 0);
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, REC), (int)REC);
	CU_ASSERT_EQUAL(hdr_at(buf, 0).sequence, 6);
	CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), 0);
	/* The header at the tail left for record 9: 7, then 9. */
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, sizeof(buf)), (int)(2 * REC));
	CU_ASSERT_EQUAL(hdr_at(buf, 0).sequence, 7);
	CU_ASSERT_EQUAL(hdr_at(buf, REC).sequence, 9);
	CU_ASSERT_EQUAL(hdr_at(buf, REC).flags, 0);
	/* A header alone fits a header's read. */
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(be->ops->trigger_vevent(be, "mock0"), 0);
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, 2 * REC), (int)(2 * REC));
	CU_ASSERT_EQUAL(be->ops->veventq_read(be, &q, buf, HSZ), (int)HSZ);
	CU_ASSERT_EQUAL(hdr_at(buf, 0).flags, NESTD_VEVENTQ_FLAG_LOST_EVENTS);
	CU_ASSERT_EQUAL(hdr_at(buf, 0).sequence, 12);
	CU_ASSERT(!readable(q.fd));
	be->ops->close(be);
}

/*
 * The sequence runs 0..INT_MAX and wraps to 0 (iommufd_vevent_handler():
 * (sequence + 1) & INT_MAX), on the model's state directly: 2^31 records
 * through the ops would take too long.
 */
static void test_sequence_wraps(void)
{
	const struct nestd_vevent_selftest ev = {.virt_id = 5};
	struct sim_state st;
	const char *err = NULL;
	uint8_t buf[4 * REC];
	uint32_t v = 0, q = 0;
	int fd = -1;

	sim_up(KERNEL_RULES_7);
	be->ops->close(be);
	CU_ASSERT_FATAL(sim_state_init(&st, &cfg, &err) == 0);
	CU_ASSERT_FATAL(sim_viommu_alloc(&st, "mock0", NESTD_VIOMMU_TYPE_SELFTEST, 0, &v, NULL) ==
			0);
	CU_ASSERT_FATAL(sim_veventq_alloc(&st, v, ST_Q, 8, &q, &fd) == 0);
	CU_ASSERT_FATAL(st.n_veventqs == 1);
	st.veventqs[0].sequence = 0x7ffffffe;
	for (int i = 0; i < 3; i++)
		CU_ASSERT_EQUAL(sim_veventq_report(&st, v, ST_Q, &ev, sizeof(ev)), 0);
	/* No queue of the type: the driver's report is -EOPNOTSUPP. */
	CU_ASSERT_EQUAL(sim_veventq_report(&st, v, NESTD_VEVENTQ_TYPE_ARM_SMMUV3, &ev, sizeof(ev)),
			-EOPNOTSUPP);
	CU_ASSERT_EQUAL(sim_veventq_read(&st, q, buf, sizeof(buf)), (int)(3 * REC));
	CU_ASSERT_EQUAL(hdr_at(buf, 0).sequence, 0x7ffffffe);
	CU_ASSERT_EQUAL(hdr_at(buf, REC).sequence, 0x7fffffff);
	CU_ASSERT_EQUAL(hdr_at(buf, 2 * REC).sequence, 0);
	CU_ASSERT_EQUAL(virt_at(buf, 2 * REC), 5);
	sim_state_free(&st);
}

static const struct unit_case tests[] = {
    {"vEVENTQ: 6.12 has none", test_no_veventq_on_6_12},
    {"vEVENTQ: alloc rules, references", test_alloc_rules},
    {"vEVENTQ: the mock's trigger", test_trigger_rules},
    {"vEVENTQ: whole-record reads", test_read_rules},
    {"vEVENTQ: depth, LOST_EVENTS, sequence", test_overflow},
    {"vEVENTQ: the sequence wraps at INT_MAX", test_sequence_wraps},
};

int main(void)
{
	return unit_run("sim_veventq", UNIT_CASES(tests));
}
