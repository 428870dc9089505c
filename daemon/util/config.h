/* SPDX-License-Identifier: MIT */
/*
 * Daemon configuration: defaults, then the INI file (--config, parsed by
 * libinih), then command-line options. See docs/iommu-nestd.conf.5.
 */
#ifndef IOMMU_NESTD_CONFIG_H
#define IOMMU_NESTD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/un.h>

#include "backend/backend.h"
#include "util/policy.h"

#define CONFIG_MAX_DEVICES 64
#define CONFIG_NAME_MAX 64
#define CONFIG_PATH_MAX 256

enum device_kind {
	DEVICE_KIND_VTD = 1,      /* VT-d stage-1 nesting (sim model or VFIO cdev) */
	DEVICE_KIND_SELFTEST = 2, /* the kernel's selftest mock device */
	DEVICE_KIND_SMMUV3 = 3,   /* ARM SMMUv3 behind a vIOMMU (sim only: no x86 QEMU has one) */
};

struct config_device {
	char name[CONFIG_NAME_MAX];
	enum device_kind kind;
	char path[CONFIG_PATH_MAX]; /* iommufd backend: /dev/vfio/devices/vfioN */
	struct policy_ids allow;    /* who may allocate on it; empty: any client */
	/*
	 * pasid = true: a PASID-capable device (Linux 7.x): the iommufd
	 * backend creates a selftest mock with MOCK_FLAGS_DEVICE_PASID, the
	 * sim gives the device the mock's 20-bit PASID width. A VFIO device's
	 * width is the hardware's either way.
	 */
	bool pasid;
};

struct config {
	char socket_path[sizeof(((struct sockaddr_un *)0)->sun_path)];
	char backend[16];      /* "sim" (default) or "iommufd" */
	char iommufd_path[CONFIG_PATH_MAX];
	int log_level;         /* syslog priority: LOG_ERR .. LOG_DEBUG */
	uint32_t socket_mode;  /* permissions of a socket we create */

	/* Limits announced in HelloReply. */
	uint32_t max_entries;      /* per Invalidate request */
	uint32_t max_message_size; /* bytes per packet, both directions */

	/* Coalescing and batching (DESIGN.md section 3). */
	bool coalesce;                 /* false: submit entries one for one */
	uint64_t coalesce_slack_pages; /* merge ranges whose gap is at most this */
	uint64_t flush_all_pages;      /* modelled cost above which one flush-all wins */
	uint32_t vtd_max_mask;         /* largest page-selective address mask (2^m pages) */
	uint32_t batch_delay_us;       /* hold a batch this long for more requests */
	uint32_t batch_max_entries;    /* entries of one HWPT's requests batched together */
	uint32_t queue_poll_us;	       /* poll a shared queue this long after its last take or answer */
	uint32_t queue_poll_slice_us;  /* one turn of the poll loop before sockets are served */
	uint32_t queue_budget;	       /* submissions one queue may have taken per turn */

	bool test_requests; /* serve CheckIotlb / SimPopulate / SimQuery / InjectFault */
	/* A VM context (own iommufd, one IOAS) per client; read at start only. */
	bool vm_contexts;

	/*
	 * Restart without loss (persist/): where the registry is persisted
	 * ("": nowhere) and how long HWPTs of a previous instance wait for
	 * their owner's Reclaim before they are destroyed.
	 */
	char state_file[CONFIG_PATH_MAX];
	uint32_t reclaim_grace_ms;

	/*
	 * Rate limit of the event log: at most log_rate_burst lines of one
	 * event kind per log_rate_interval_ms (0: unlimited); the rest are
	 * counted and summarised once the interval ends.
	 */
	uint32_t log_rate_burst;
	uint32_t log_rate_interval_ms;

	/* Who may connect at all, and per-client quotas. */
	struct policy_ids allow;
	/* Groups whose members (besides root) may send admin requests. */
	struct policy_ids admin;
	struct policy_quota quota;
	/* Guest memory a client may have mapped, over all its devices (bytes). */
	uint64_t max_mapped_bytes;

	struct config_device devices[CONFIG_MAX_DEVICES];
	uint32_t n_devices;

	/* Fault injected into the sim backend at start (testing). */
	struct backend_fault sim_fault;
	/* Whose rules the sim models where kernels differ ([daemon] sim_kernel). */
	enum kernel_rules sim_kernel;
};

void config_defaults(struct config *cfg);

/*
 * Reads an INI file over cfg. Returns 0, or -errno / the positive line
 * number of the first bad line; *err gets a message either way on failure.
 */
int config_load(struct config *cfg, const char *path, char *err, size_t errlen);

/*
 * What a reload may not change under live clients (the socket, the backend
 * and its devices, buffer sizes, recovery): the name of the first such key
 * that differs between cur and next, or NULL if next can replace cur.
 */
const char *config_reload_conflict(const struct config *cur, const struct config *next);

/* Looks up a device by name; NULL if the config does not declare it. */
const struct config_device *config_find_device(const struct config *cfg,
					       const char *name);

#endif
