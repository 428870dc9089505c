/* SPDX-License-Identifier: MIT */
/*
 * libiommu-nest: the client side of iommu-nestd.
 *
 * An unprivileged VMM uses this library to have iommu-nestd allocate nested
 * (stage-1) HWPTs for it and to submit batched IOTLB invalidations, with a
 * result for every entry, without opening /dev/iommu itself.
 *
 * Conventions
 *  - Every call that can fail returns 0 (or a count, where stated) on
 *    success and a negative errno on failure. Daemon-side failures are the
 *    daemon's Reply.status; iommu_nest_last_error() has its text.
 *    -EPROTO means the daemon's reply was malformed or unexpected,
 *    -ECONNRESET / -EPIPE that the daemon went away. After a transport or
 *    framing error (those three, or an undecodable/truncated packet) the
 *    handle is dead: every later call fails with the same error and only
 *    iommu_nest_close() is useful.
 *  - Objects (HWPTs, guest memory mappings) belong to the session: when the
 *    handle is closed, or the connection drops, the daemon unmaps the guest
 *    memory the session mapped and destroys every HWPT it allocated.
 *    The exception is a daemon crash (or watchdog restart): the HWPTs, their
 *    device attachments and their cached translations survive it, and the
 *    restarted daemon gives each back to whoever presents its resume token
 *    (iommu_nest_last_resume_token(), iommu_nest_reclaim()) within its
 *    reclaim grace period.
 *
 * Thread safety
 *  A handle is not thread-safe: use one handle per thread, or serialise all
 *  calls on a handle (including iommu_nest_process()) with your own lock.
 *  Distinct handles share no state and may be used concurrently. Callbacks
 *  run on the thread that called iommu_nest_process().
 *
 * Layouts and constants below mirror the kernel uAPI (linux/iommufd.h and
 * the iommufd selftest) so that a VMM can pass the guest's invalidation
 * array through unchanged; this header deliberately does not include any
 * kernel header.
 */
#ifndef IOMMU_NEST_H
#define IOMMU_NEST_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define IOMMU_NEST_PROTOCOL_VERSION 1
#define IOMMU_NEST_DEFAULT_SOCKET   "/run/iommu-nestd/iommu-nestd.sock"

/* HWPT data types for alloc (enum iommu_hwpt_data_type + selftest). */
#define IOMMU_NEST_HWPT_DATA_NONE     0u
#define IOMMU_NEST_HWPT_DATA_VTD_S1   1u
#define IOMMU_NEST_HWPT_DATA_SELFTEST 0xdeadu
/* The guest's STE on an ARM SMMUv3 vIOMMU: u64 ste[2] (host order). Daemons since 0.12. */
#define IOMMU_NEST_HWPT_DATA_ARM_SMMUV3 2u

/* Invalidation data types (enum iommu_hwpt_invalidate_data_type + selftest). */
#define IOMMU_NEST_INV_DATA_VTD_S1	     0u
#define IOMMU_NEST_INV_DATA_SELFTEST	     0xdeadbeefu
#define IOMMU_NEST_INV_DATA_SELFTEST_INVALID 0xdadbeefu

/* struct iommu_hwpt_vtd_s1 flags. */
#define IOMMU_NEST_VTD_S1_SRE  (1u << 0)
#define IOMMU_NEST_VTD_S1_EAFE (1u << 1)
#define IOMMU_NEST_VTD_S1_WPE  (1u << 2)

/* struct iommu_hwpt_vtd_s1_invalidate flags. */
#define IOMMU_NEST_VTD_INV_FLAGS_LEAF (1u << 0)

/* Selftest mock driver. */
#define IOMMU_NEST_TEST_INVALIDATE_FLAG_ALL (1u << 0)
#define IOMMU_NEST_TEST_IOTLB_DEFAULT	    0xbadbeefu
#define IOMMU_NEST_TEST_IOTLB_NUM	    4u

/* HelloReply.capabilities bits. */
#define IOMMU_NEST_CAP_CHECK_IOTLB  (1u << 0) /* iommu_nest_check_iotlb() served */
#define IOMMU_NEST_CAP_SIM_MODEL    (1u << 1) /* iommu_nest_sim_*() served */
#define IOMMU_NEST_CAP_FAULT_INJECT (1u << 2) /* iommu_nest_inject_fault() served */
#define IOMMU_NEST_CAP_CONTINUE	    (1u << 3) /* IOMMU_NEST_INV_CONTINUE honoured */

/* Request-level invalidation flags. */
#define IOMMU_NEST_INV_CONTINUE (1u << 0) /* keep going past failing entries */

/* Per-entry states. */
enum iommu_nest_entry_state {
	IOMMU_NEST_ENTRY_NOT_ATTEMPTED = 0,
	IOMMU_NEST_ENTRY_DONE = 1,
	IOMMU_NEST_ENTRY_FAILED = 2,
};

/* Simulator cache kinds (iommu_nest_sim_populate()). */
enum iommu_nest_sim_kind {
	IOMMU_NEST_SIM_IOTLB = 1, /* leaf translation */
	IOMMU_NEST_SIM_PSC = 2,	  /* paging-structure cache entry (non-leaf) */
};

/* Fault-injection modes (iommu_nest_inject_fault()). */
enum iommu_nest_fault_mode {
	IOMMU_NEST_FAULT_CLEAR = 0,
	IOMMU_NEST_FAULT_AT_INDEX = 1, /* at submitted entry index */
	IOMMU_NEST_FAULT_AT_ADDR = 2,  /* at the entry covering addr */
};

/* struct iommu_hwpt_vtd_s1_invalidate, byte for byte. */
struct iommu_nest_vtd_inv {
	uint64_t addr;
	uint64_t npages;
	uint32_t flags;
	uint32_t reserved;
};

/* struct iommu_hwpt_invalidate_selftest, byte for byte. */
struct iommu_nest_selftest_inv {
	uint32_t flags;
	uint32_t iotlb_id;
};

/* The result of one entry of an invalidation request. */
struct iommu_nest_entry_result {
	uint32_t state;	   /* enum iommu_nest_entry_state */
	int32_t error;	   /* negative errno when FAILED, else 0 */
	uint32_t hw_error; /* hardware error (VT-d ICE/ITE) where known, else 0 */
};

/* The outcome of a whole invalidation request. */
struct iommu_nest_inv_summary {
	int32_t status;		    /* Reply.status: 0 or negative errno */
	uint32_t entries_handled;   /* leading run of DONE: the kernel's entry_num */
	uint32_t entries_submitted; /* backend entries after coalescing */
	uint64_t pages_flushed;	    /* pages the backend modelled as flushed */
};

/* Daemon counters (StatsReply). */
struct iommu_nest_stats {
	uint64_t connections;
	uint64_t sessions_active;
	uint64_t requests;
	uint64_t request_errors;
	uint64_t entries_received;
	uint64_t entries_failed;
	uint64_t entries_submitted;
	uint64_t submissions;
	uint64_t pages_flushed;
	uint64_t hwpts_active;
	uint64_t protocol_errors;
	uint64_t batches;
	uint64_t denials;
};

/* Fault to inject into the simulator's submissions. */
struct iommu_nest_fault {
	uint32_t hwpt_id;    /* 0: any HWPT */
	uint32_t mode;	     /* enum iommu_nest_fault_mode */
	uint32_t index;	     /* AT_INDEX: index within one backend submission */
	uint64_t addr;	     /* AT_ADDR: page address */
	int32_t error;	     /* negative errno to fail with (0: succeed) */
	uint32_t hw_error;   /* hardware error to report on that entry */
	uint32_t latency_us; /* added to every submission */
	uint32_t count;	     /* times to fire; 0 = until cleared */
};

/* Which public struct an entries array is made of (raw invalidation). */
enum iommu_nest_entry_layout {
	IOMMU_NEST_LAYOUT_VTD = 1,	/* struct iommu_nest_vtd_inv */
	IOMMU_NEST_LAYOUT_SELFTEST = 2, /* struct iommu_nest_selftest_inv */
};

/*
 * An invalidation request with every wire field under the caller's control,
 * for tests that must send what a well-behaved client never would.
 */
struct iommu_nest_inv_raw {
	uint32_t hwpt_id;
	uint32_t data_type;
	uint32_t flags;	    /* IOMMU_NEST_INV_* */
	uint32_t reserved;  /* the ioctl's __reserved */
	uint32_t entry_len; /* 0 = native size */
	uint32_t layout;    /* enum iommu_nest_entry_layout, ignored if n == 0 */
	const void *entries;
	size_t n;
};

struct iommu_nest;

/* ---- Connection ---------------------------------------------------------- */

/*
 * Connects to the daemon's SOCK_SEQPACKET socket at path (NULL: the default
 * socket), says Hello and stores the daemon's capabilities. client_name is
 * informational (logs); NULL is allowed. On success *hp is a new handle.
 */
int iommu_nest_connect(const char *path, const char *client_name, struct iommu_nest **hp);

/*
 * Like iommu_nest_connect() on an already connected socket (socket
 * activation, an fd passed down by a management process). Takes ownership
 * of fd: it is closed on failure too.
 */
int iommu_nest_connect_fd(int fd, const char *client_name, struct iommu_nest **hp);

/*
 * Closes the connection and frees the handle. Requests still in flight are
 * abandoned without their callbacks being run. NULL is a no-op. Must not be
 * called from a completion callback of the same handle.
 */
void iommu_nest_close(struct iommu_nest *h);

/* ---- Capabilities (from HelloReply; valid for the handle's lifetime) ----- */

uint32_t iommu_nest_server_version(const struct iommu_nest *h);
const char *iommu_nest_backend(const struct iommu_nest *h);
uint32_t iommu_nest_capabilities(const struct iommu_nest *h);
uint32_t iommu_nest_max_entries(const struct iommu_nest *h);
uint32_t iommu_nest_max_message_size(const struct iommu_nest *h);
const uint32_t *iommu_nest_hwpt_data_types(const struct iommu_nest *h, size_t *n);
const uint32_t *iommu_nest_inv_data_types(const struct iommu_nest *h, size_t *n);
size_t iommu_nest_device_count(const struct iommu_nest *h);
/* The i-th device this client may use, or NULL if out of range. */
const char *iommu_nest_device(const struct iommu_nest *h, size_t i);

/*
 * The daemon's text for the last failed reply (Reply.error) or a short
 * description of the last local failure; "" if none.
 */
const char *iommu_nest_last_error(const struct iommu_nest *h);

/*
 * The limit the daemon named in the last failed reply (quota or size:
 * -EDQUOT, -EAGAIN, -E2BIG, -EMSGSIZE, -EUSERS); 0 if it named none.
 */
uint64_t iommu_nest_last_limit(const struct iommu_nest *h);

/* ---- Objects ------------------------------------------------------------- */

/* Succeeds iff hwpt_id is a nested HWPT of this session accepting data_type. */
int iommu_nest_probe(struct iommu_nest *h, uint32_t hwpt_id, uint32_t data_type);

/* Allocates a nested VT-d stage-1 HWPT for device (struct iommu_hwpt_vtd_s1). */
int iommu_nest_alloc_vtd_s1(struct iommu_nest *h, const char *device, uint64_t flags,
			    uint64_t pgtbl_addr, uint32_t addr_width, uint32_t *hwpt_id);

/* Allocates a selftest mock nested HWPT whose four IOTLB slots hold iotlb. */
int iommu_nest_alloc_selftest(struct iommu_nest *h, const char *device, uint32_t iotlb,
			      uint32_t *hwpt_id);

/*
 * General allocation: any data_type and alloc flags. data/len is parsed per
 * the data *layout* given by data_layout (IOMMU_NEST_HWPT_DATA_VTD_S1:
 * struct { u64 flags, pgtbl_addr; u32 addr_width, reserved; }, i.e. the
 * kernel's struct iommu_hwpt_vtd_s1; IOMMU_NEST_HWPT_DATA_SELFTEST: u32
 * iotlb; NONE: no data sent), independently of data_type, so tests can send
 * mismatched or bogus combinations. len must cover the layout (-EINVAL).
 */
int iommu_nest_alloc(struct iommu_nest *h, const char *device, uint32_t data_type, uint32_t flags,
		     uint32_t data_layout, const void *data, size_t len, uint32_t *hwpt_id);

/* Size of a resume token (AllocReply.resume_token). */
#define IOMMU_NEST_RESUME_TOKEN_LEN 16

/*
 * The resume token of the HWPT the last successful iommu_nest_alloc*() call
 * on h allocated: 0, or -ENOENT if the daemon sent none (it predates
 * restart support). The token is a capability: whoever holds it (and runs
 * as the same uid) can reclaim the HWPT after a daemon restart, so keep it
 * as private as the HWPT itself. It stays valid for the HWPT's lifetime.
 */
int iommu_nest_last_resume_token(const struct iommu_nest *h,
				 uint8_t token[IOMMU_NEST_RESUME_TOKEN_LEN]);

/*
 * After the daemon restarted (a new connection, since the old one dropped):
 * takes back hwpt_id, which a previous daemon instance allocated for us,
 * with the token its allocation returned. Devices that were attached to it
 * still are, and its IOTLB state is as it was. -ENOENT for a wrong id or
 * token, a HWPT of another uid, one already reclaimed, or one destroyed
 * because nobody reclaimed it within the daemon's grace period;
 * -EOPNOTSUPP from a daemon without restart support.
 */
int iommu_nest_reclaim(struct iommu_nest *h, uint32_t hwpt_id,
		       const uint8_t token[IOMMU_NEST_RESUME_TOKEN_LEN]);

/*
 * After the daemon restarted: takes back the claim on a device this VMM
 * opened (iommu_nest_open_device(), iommu_nest_adopt_device()) before the
 * restart and whose fd it still holds, passing that fd as the proof (it
 * stays the caller's). Through the restart the fd kept working (BARs,
 * irqs, DMA into the mapped memory); from here on iommu_nest_close_device()
 * works on the device again, and the guest memory on it comes back too.
 * For a VMM without a nested HWPT to reclaim: iommu_nest_reclaim() of the
 * HWPT attached to the device (or of any HWPT of its VM context) brings the
 * claim back by itself. device (IOMMU_NEST_NAME_MAX bytes, may be NULL)
 * gets the device's name. -ENOENT when fd is no device the daemon handed
 * this uid before the restart, or the claim ended with the grace period;
 * -EBUSY when the device is in another VM context than this session's.
 */
int iommu_nest_reclaim_device(struct iommu_nest *h, int device_fd, char *device);

int iommu_nest_destroy(struct iommu_nest *h, uint32_t hwpt_id);
int iommu_nest_attach(struct iommu_nest *h, const char *device, uint32_t hwpt_id);
int iommu_nest_detach(struct iommu_nest *h, const char *device);

/* ---- Guest memory (stage 2) ---------------------------------------------- */

/* Access flags of iommu_nest_map_memory() (IOMMU_IOAS_MAP_* values). */
#define IOMMU_NEST_MAP_WRITEABLE (1u << 1)
#define IOMMU_NEST_MAP_READABLE	 (1u << 2)

/*
 * Maps guest RAM into device's stage 2 (the I/O address space its nest
 * parent translates through), so that stage-1 tables of a nested HWPT on
 * that device resolve to real memory: bytes [offset, offset + length) of
 * fd go to IOVAs [iova, iova + length). fd is a memfd (or a regular file)
 * holding the guest RAM; it is passed to the daemon with SCM_RIGHTS and
 * stays the caller's (close it whenever convenient: the kernel keeps the
 * pages pinned while they are mapped). flags: IOMMU_NEST_MAP_READABLE and/or
 * IOMMU_NEST_MAP_WRITEABLE; WRITEABLE needs fd open read-write.
 *
 * iova, length and offset must be page aligned and length > 0 (-EINVAL);
 * the file must cover offset + length (-EINVAL); the range must fit the
 * device's aperture and miss its reserved ranges (-EINVAL; the kernel's
 * selftest mock only takes [16 MiB, 2 GiB)) and overlap no mapping already
 * there (-EEXIST). The device must not be held by another client (-EBUSY):
 * a device serves one client at a time, the one that first maps memory on
 * it or attaches one of its HWPTs to it, until that client has unmapped
 * and detached everything or disconnected. The bytes count against the
 * daemon's per-client max_mapped_bytes (-EDQUOT, the limit in
 * iommu_nest_last_limit()).
 *
 * The mapping lives until iommu_nest_unmap_memory() or the end of the
 * session; like HWPTs, it survives a daemon restart and comes back with
 * iommu_nest_reclaim() of the HWPT attached to the device.
 */
int iommu_nest_map_memory(struct iommu_nest *h, const char *device, uint64_t iova, uint64_t length,
			  int fd, uint64_t offset, uint32_t flags);

/*
 * Unmaps every mapping of this session on device that lies inside
 * [iova, iova + length); iova 0 with length UINT64_MAX unmaps them all.
 * A mapping only partly inside the range, or no mapping in it at all, is
 * -ENOENT, and then nothing is unmapped (mappings are never split).
 * length 0 is -EINVAL, a range that wraps -EOVERFLOW.
 */
int iommu_nest_unmap_memory(struct iommu_nest *h, const char *device, uint64_t iova,
			    uint64_t length);

/* ---- Hardware info (IOMMU_GET_HW_INFO) ----------------------------------- */

/* iommu_nest_hw_info.data_type (enum iommu_hw_info_type + selftest). */
#define IOMMU_NEST_HW_INFO_TYPE_NONE	   0u
#define IOMMU_NEST_HW_INFO_TYPE_INTEL_VTD  1u
#define IOMMU_NEST_HW_INFO_TYPE_ARM_SMMUV3 2u /* struct iommu_hw_info_arm_smmuv3 in data */
#define IOMMU_NEST_HW_INFO_TYPE_SELFTEST   0xfeedbeefu

/* iommu_nest_hw_info.vtd.flags (enum iommu_hw_info_vtd_flags). */
#define IOMMU_NEST_HW_INFO_VTD_ERRATA_772415_SPR17 (1u << 0)

/* iommu_nest_hw_info.capabilities (enum iommufd_hw_capabilities). */
#define IOMMU_NEST_HW_CAP_DIRTY_TRACKING	(1ull << 0)
#define IOMMU_NEST_HW_CAP_PCI_PASID_EXEC	(1ull << 1)
#define IOMMU_NEST_HW_CAP_PCI_PASID_PRIV	(1ull << 2)
#define IOMMU_NEST_HW_CAP_PCI_ATS_NOT_SUPPORTED (1ull << 3) /* reported by Linux 7.x */

#define IOMMU_NEST_HW_INFO_DATA_MAX 128

/*
 * What the kernel's IOMMU_GET_HW_INFO says of the IOMMU behind a device:
 * the raw type-specific structure, and a decoded view of the types the
 * library knows (all zero for any other type).
 */
struct iommu_nest_hw_info {
	uint32_t data_type; /* IOMMU_NEST_HW_INFO_TYPE_* */
	/* The bytes the kernel has for the type: data holds the first
	 * min(data_len, IOMMU_NEST_HW_INFO_DATA_MAX) of them, the rest zero. */
	uint32_t data_len;
	uint8_t data[IOMMU_NEST_HW_INFO_DATA_MAX]; /* the kernel's struct, host byte order */
	uint64_t capabilities;			   /* IOMMU_NEST_HW_CAP_* */
	uint32_t max_pasid_log2;		   /* PASID width; 0: no PASID support */
	/* data_type IOMMU_NEST_HW_INFO_TYPE_INTEL_VTD (struct iommu_hw_info_vtd). */
	struct {
		uint32_t flags;	   /* IOMMU_NEST_HW_INFO_VTD_* */
		uint64_t cap_reg;  /* VT-d spec 11.4.2, Capability Register */
		uint64_t ecap_reg; /* VT-d spec 11.4.3, Extended Capability Register */
	} vtd;
	/* data_type IOMMU_NEST_HW_INFO_TYPE_SELFTEST (struct iommu_test_hw_info). */
	struct {
		uint32_t flags;
		uint32_t regval; /* 0xdeadbeef from the kernel's mock */
	} selftest;
};

/*
 * IOMMU_GET_HW_INFO of device, as the kernel answers it, for a VMM that
 * builds a vIOMMU compatible with the host's (cap/ecap registers, the
 * read-only-mapping erratum: with IOMMU_NEST_HW_INFO_VTD_ERRATA_772415_SPR17
 * the daemon refuses a map without IOMMU_NEST_MAP_WRITEABLE on the device,
 * -EINVAL, as the driver does). The device must be configured (-ENODEV) and
 * allowed to this client (-EPERM); it need not be free. Since
 * LIBIOMMU_NEST_0.5.
 */
int iommu_nest_get_hw_info(struct iommu_nest *h, const char *device,
			   struct iommu_nest_hw_info *info);

/* ---- Device hand-off ------------------------------------------------------ */

/* What iommu_nest_open_device() and iommu_nest_adopt_device() report. */
struct iommu_nest_device_info {
	uint32_t dev_id;      /* the iommufd device object the cdev is bound as */
	uint32_t parent_id;   /* the nest parent; 0: the host IOMMU cannot nest */
	uint32_t ioas_id;     /* the IOAS guest memory (iommu_nest_map_memory) goes into */
	uint32_t attached_id; /* the page table the device is on now */
	uint32_t vfio_flags;  /* VFIO_DEVICE_GET_INFO flags (VFIO_DEVICE_FLAGS_RESET, _PCI) */
	uint32_t num_regions; /* VFIO_DEVICE_GET_INFO */
	uint32_t num_irqs;
};

/*
 * Claims device for this client and returns, in *fd, a descriptor of its
 * VFIO device cdev, bound by the daemon to the daemon's iommufd (a dup of
 * the daemon's own, passed with SCM_RIGHTS; the caller closes it). info
 * (may be NULL) gets the kernel objects behind it.
 *
 * The VMM may use the fd for everything a VMM does with a VFIO device:
 * VFIO_DEVICE_GET_INFO, VFIO_DEVICE_GET_REGION_INFO, region read/write and
 * BAR mmap (config space, MMIO), VFIO_DEVICE_GET_IRQ_INFO /
 * VFIO_DEVICE_SET_IRQS (eventfds), VFIO_DEVICE_RESET. It must not attach
 * or detach page tables with it (VFIO_DEVICE_ATTACH_IOMMUFD_PT /
 * _DETACH_IOMMUFD_PT, VFIO_DEVICE_BIND_IOMMUFD): page tables are the
 * daemon's (iommu_nest_attach()); the daemon puts the device back on its
 * own page table when it takes the device back. The device's DMA goes
 * through the daemon's page tables: guest memory with
 * iommu_nest_map_memory(), a nested HWPT with iommu_nest_attach().
 *
 * The claim lasts until iommu_nest_close_device() or the end of the
 * connection; meanwhile the device is busy for every other client
 * (-EBUSY), as for an attachment. The device must be configured (-ENODEV)
 * and allowed (-EPERM). -EOPNOTSUPP: the backend or the device has no VFIO
 * device fd (the sim backend, a selftest mock device), with the reason in
 * iommu_nest_last_error(). Since LIBIOMMU_NEST_0.8.
 */
int iommu_nest_open_device(struct iommu_nest *h, const char *device, int *fd,
			   struct iommu_nest_device_info *info);

/*
 * Ends the claim of iommu_nest_open_device() (or _adopt_device()): this
 * client's nested HWPT is detached from the device, its guest memory on
 * the device unmapped, the device put back on the daemon's page table and
 * reset where it supports reset (VFIO_DEVICE_FLAGS_RESET). The fd the VMM
 * still holds then reaches none of its memory. -ENOENT: not open by this
 * client. Since LIBIOMMU_NEST_0.8.
 */
int iommu_nest_close_device(struct iommu_nest *h, const char *device);

/*
 * The reverse of iommu_nest_open_device(), the way libvirt works: fd is a
 * VFIO cdev of device that the caller opened and did not bind; the daemon
 * checks it is the configured device's cdev (-ENOTTY not a character
 * device, -EXDEV another device's, -EBUSY already bound), binds it to its
 * iommufd in place of its own binding and claims the device as
 * iommu_nest_open_device() does. The caller keeps fd (the daemon holds its
 * own copy) and may hand it to the VMM, with the same rules.
 * Since LIBIOMMU_NEST_0.8.
 */
int iommu_nest_adopt_device(struct iommu_nest *h, const char *device, int fd,
			    struct iommu_nest_device_info *info);

/* ---- Dirty tracking (live migration) ------------------------------------- */

/*
 * IOMMU_HWPT_SET_DIRTY_TRACKING on the device's nest parent (its stage 2),
 * which the daemon allocated with dirty tracking when the device reports
 * IOMMU_NEST_HW_CAP_DIRTY_TRACKING; otherwise -EOPNOTSUPP, as the kernel
 * says. Enabling clears the dirty bits. The device must be configured
 * (-ENODEV), allowed (-EPERM) and not held by another client (-EBUSY).
 * Since LIBIOMMU_NEST_0.6.
 */
int iommu_nest_set_dirty_tracking(struct iommu_nest *h, const char *device, int enable);

/* iommu_nest_get_dirty_bitmap() flags (IOMMU_HWPT_GET_DIRTY_BITMAP_NO_CLEAR). */
#define IOMMU_NEST_DIRTY_NO_CLEAR (1u << 0)

/* The bitmap's size in bytes for length at page_size (a power of two): whole u64 words. */
#define IOMMU_NEST_DIRTY_BITMAP_BYTES(length, page_size)                                           \
	((((uint64_t)(length) + (page_size)-1) / (page_size) + 63) / 64 * 8)

/*
 * IOMMU_HWPT_GET_DIRTY_BITMAP of [iova, iova + length) of the device's
 * nest parent, a bit per page_size: bit i of u64 word i / 64 of memfd
 * (from offset 0) says page iova + i * page_size was written, and (without
 * IOMMU_NEST_DIRTY_NO_CLEAR) is cleared by the read. The daemon zeroes the
 * bitmap first. memfd: read-write, sealed with F_SEAL_SHRINK (so that the
 * daemon's mapping of it cannot fault) and at least
 * IOMMU_NEST_DIRTY_BITMAP_BYTES(length, page_size) long, else -EINVAL.
 * page_size must be a power of two; the kernel's errnos otherwise (-EINVAL
 * for length or page_size 0 or a range not page_size aligned,
 * -EOPNOTSUPP for unknown flags or a parent without dirty tracking); with
 * tracking off the kernel answers 0 and reports nothing. At most 256 MiB
 * of bitmap per call (-E2BIG). Since LIBIOMMU_NEST_0.6.
 */
int iommu_nest_get_dirty_bitmap(struct iommu_nest *h, const char *device, uint64_t iova,
				uint64_t length, uint64_t page_size, uint32_t flags, int memfd);

/*
 * Test-only (test_requests = true): marks the pages whose bits are set in
 * bitmap (the layout above, bitmap_bytes long; missing bits are clear)
 * dirty, as a device's writes would: the sim's model, or
 * IOMMU_TEST_OP_DIRTY on a selftest device. Only mapped pages get dirty;
 * tracking off is -EINVAL (the kernel's). Since LIBIOMMU_NEST_0.6.
 */
int iommu_nest_mark_dirty(struct iommu_nest *h, const char *device, uint64_t iova, uint64_t length,
			  uint64_t page_size, const uint64_t *bitmap, size_t bitmap_bytes);

/* ---- Invalidation (synchronous) ------------------------------------------ */

/*
 * IOMMU_HWPT_INVALIDATE through the daemon. entries is an array of n
 * struct iommu_nest_vtd_inv (data_type IOMMU_NEST_INV_DATA_VTD_S1) or
 * struct iommu_nest_selftest_inv (the selftest types); other data types are
 * only accepted with n == 0 (a probe) - use iommu_nest_invalidate_raw().
 * flags: IOMMU_NEST_INV_*.
 *
 * Returns Reply.status. results (n entries, may be NULL) and summary (may be
 * NULL) are filled whenever the daemon answered, i.e. also when it returns
 * a daemon errno such as -EINVAL for a failing entry; they are left
 * untouched on a local or transport error. Without per-entry data in the
 * reply (a request-level failure), every entry reads NOT_ATTEMPTED.
 *
 * Larger than the daemon's max_message_size once encoded: -EMSGSIZE,
 * nothing sent, the handle stays usable.
 */
int iommu_nest_invalidate(struct iommu_nest *h, uint32_t hwpt_id, uint32_t data_type,
			  const void *entries, size_t n, uint32_t flags,
			  struct iommu_nest_entry_result *results,
			  struct iommu_nest_inv_summary *summary);

/* As iommu_nest_invalidate(), with every wire field taken from req. */
int iommu_nest_invalidate_raw(struct iommu_nest *h, const struct iommu_nest_inv_raw *req,
			      struct iommu_nest_entry_result *results,
			      struct iommu_nest_inv_summary *summary);

/* ---- Invalidation (asynchronous, for the VMM's own event loop) ----------- */

/*
 * Completion callback. token is what submit returned; summary->status is
 * the request's status (or the transport error if the connection failed
 * while the request was in flight, in which case every result reads
 * NOT_ATTEMPTED). results is the caller's buffer given to submit. The
 * callback may submit more requests and make synchronous calls on h, but
 * must not close h.
 */
typedef void (*iommu_nest_inv_cb)(struct iommu_nest *h, uint64_t token,
				  const struct iommu_nest_inv_summary *summary,
				  struct iommu_nest_entry_result *results, size_t n, void *opaque);

/*
 * The socket to watch: readable (POLLIN) means iommu_nest_process() has
 * replies to deliver. Owned by the handle: do not read, write or close it.
 */
int iommu_nest_fd(const struct iommu_nest *h);

/*
 * Sends an invalidation without waiting for its reply. entries are copied
 * into the request before this returns; results (n entries, may be NULL)
 * must stay valid until the callback ran. *token (may be NULL) receives the
 * request id, unique for the handle's lifetime. Any number of requests may
 * be in flight; completions may arrive in any order.
 *
 * Never blocks: -EAGAIN means the socket's send buffer is full - wait for
 * iommu_nest_fd() to become writable (POLLOUT), run iommu_nest_process(),
 * and retry.
 */
int iommu_nest_invalidate_submit(struct iommu_nest *h, uint32_t hwpt_id, uint32_t data_type,
				 const void *entries, size_t n, uint32_t flags,
				 struct iommu_nest_entry_result *results, iommu_nest_inv_cb cb,
				 void *opaque, uint64_t *token);

/* As iommu_nest_invalidate_submit(), with every wire field taken from req. */
int iommu_nest_invalidate_submit_raw(struct iommu_nest *h, const struct iommu_nest_inv_raw *req,
				     struct iommu_nest_entry_result *results, iommu_nest_inv_cb cb,
				     void *opaque, uint64_t *token);

/*
 * Reads every reply available without blocking and runs the callbacks of
 * the completed requests, in completion order. Completions that a
 * synchronous call read off the socket while waiting for its own reply are
 * delivered here too, so after a synchronous call on a handle with requests
 * in flight, call this even if the fd is not readable (see
 * iommu_nest_pending()).
 *
 * Returns the number of callbacks run, or a negative errno if the
 * connection failed; in that case every request in flight was completed
 * (callback run) with that error first.
 */
int iommu_nest_process(struct iommu_nest *h);

/* Requests submitted and not yet delivered to their callback. */
size_t iommu_nest_in_flight(const struct iommu_nest *h);

/* Completions already received and waiting for iommu_nest_process(). */
size_t iommu_nest_pending(const struct iommu_nest *h);

/* ---- Test and diagnostics ------------------------------------------------ */

/* 0 iff mock IOTLB slot iotlb_id of a selftest HWPT holds expected, -EINVAL if not. */
int iommu_nest_check_iotlb(struct iommu_nest *h, uint32_t hwpt_id, uint32_t iotlb_id,
			   uint32_t expected);

/* Caches npages translations at addr in the model IOTLB (kind: iommu_nest_sim_kind). */
int iommu_nest_sim_populate(struct iommu_nest *h, uint32_t hwpt_id, uint64_t addr, uint64_t npages,
			    uint32_t kind);

/* Counts the cached pages of [addr, addr + npages pages) in the model. */
int iommu_nest_sim_query(struct iommu_nest *h, uint32_t hwpt_id, uint64_t addr, uint64_t npages,
			 uint64_t *iotlb_pages, uint64_t *psc_pages);

/*
 * The same on a nested HWPT of an ARM SMMUv3 vIOMMU (sim): the host SMMU's
 * TLB entries of the vIOMMU's VMID and asid (IOMMU_NEST_SIM_IOTLB: 4 KiB
 * leaves; IOMMU_NEST_SIM_PSC: walk-cache entries of the 2 MiB blocks). The
 * query counts what a translation of asid could still hit (global leaves
 * too). Since LIBIOMMU_NEST_0.12.
 */
int iommu_nest_sim_populate_asid(struct iommu_nest *h, uint32_t hwpt_id, uint32_t asid,
				 uint64_t addr, uint64_t npages, uint32_t kind);
int iommu_nest_sim_query_asid(struct iommu_nest *h, uint32_t hwpt_id, uint32_t asid, uint64_t addr,
			      uint64_t npages, uint64_t *iotlb_pages, uint64_t *psc_pages);

int iommu_nest_inject_fault(struct iommu_nest *h, const struct iommu_nest_fault *fault);

/* Daemon-wide counters; an admin request (see below). */
int iommu_nest_stats(struct iommu_nest *h, struct iommu_nest_stats *stats);

/*
 * The daemon's shared-queue counters, all queues together; an admin
 * request like iommu_nest_stats() (LIBIOMMU_NEST_0.10).
 */
struct iommu_nest_queue_stats {
	uint64_t submissions;	   /* slots taken */
	uint64_t completions;	   /* completions written, refusals included */
	uint64_t kicks;		   /* kick eventfd writes the daemon read */
	uint64_t kicks_suppressed; /* slots taken while it polled: no kick needed */
	uint64_t calls;		   /* call eventfd writes (a client asleep) */
	uint64_t calls_suppressed; /* completions to a client not asleep: no call */
	uint64_t stalls;	   /* back-pressure: full completion ring or max_inflight */
	uint64_t poll_passes;	   /* turns of the daemon's poll loop */
};

int iommu_nest_queue_stats(struct iommu_nest *h, struct iommu_nest_queue_stats *stats);

/* ---- Shared-memory queue (optional) --------------------------------------- */
/*
 * A second way to the daemon for invalidations: a memfd with a submission
 * and a completion ring shared with the daemon, and two eventfds (kick,
 * call), so that a synchronous invalidation costs no socket round trip.
 * While a queue is open, iommu_nest_invalidate(), _raw() and the
 * asynchronous iommu_nest_invalidate_submit() and _submit_raw() go through
 * it transparently, with the same results (per-entry state, errno,
 * hw_error, summary) and the same completion rules: async completions are
 * delivered by iommu_nest_process() in completion order, and a sync call
 * that reads async completions while it waits parks them for it. A
 * request over 4096 entries or iommu_nest_max_entries(), or of an unknown
 * entry layout, still takes the socket, and so does an async request while
 * the ring (entries requests in flight) or its entry area is full. The
 * daemon refuses a queue over its [policy] max_queue_bytes (-EDQUOT); one
 * queue per connection (-EBUSY).
 *
 * entries: ring slots (a power of two, 1 to 4096). spin_us: how long a
 * sync call spins waiting for its completion before it sleeps on the call
 * eventfd. With async requests in flight on the queue, a VMM's event loop
 * watches iommu_nest_queue_fd() beside iommu_nest_fd() and runs
 * iommu_nest_process() when either is readable. If the queue fails (the
 * daemon closed it), the sync call that saw it returns -EPROTO, the async
 * requests in flight on it complete with -EPROTO, the queue is closed and
 * later calls take the socket.
 */
int iommu_nest_queue_open(struct iommu_nest *h, uint32_t entries, uint32_t spin_us);

/*
 * A spin_us for a 2-CPU host: a little more than a polled round trip
 * (the daemon answers a polled queue within a few microseconds), far less
 * than the sleep and wake-up (tens of microseconds) it saves; a client
 * whose daemon does not poll (queue_poll_us = 0) should pass 0.
 */
#define IOMMU_NEST_QUEUE_SPIN_US 20u

/*
 * A spin_us for iommu_nest_queue_spin() with a window of async requests in
 * flight: completions then come once per batch the daemon runs ([coalesce]
 * batch_max_entries, 1024 by default: some 50 us of its CPU on a 2-CPU
 * host), so a spin shorter than that always ends in a sleep, and every
 * batch costs a wake-up on each side. 200 us covers a batch with room to
 * spare and bounds what a stalled daemon costs us (KVM's halt_poll_ns
 * makes the same bet for a vCPU). The spin gives its CPU away every 20 us
 * to any neighbour that wants it.
 */
#define IOMMU_NEST_QUEUE_WINDOW_SPIN_US 200u

/*
 * Closes the queue (the daemon unmaps it), after waiting for the requests
 * in flight on it (their callbacks run in the next iommu_nest_process()).
 * -ENOENT when none is open.
 */
int iommu_nest_queue_close(struct iommu_nest *h);

/*
 * The queue's completion eventfd, or -1 without a queue: readable when the
 * daemon wrote a completion while async requests were in flight on the
 * queue (or a sync caller slept); iommu_nest_process() empties it. Owned by the
 * handle: do not read, write or close it.
 */
int iommu_nest_queue_fd(const struct iommu_nest *h);

/*
 * For a VMM that keeps a window of async requests in flight on the queue
 * and would rather spin than sleep between completions: looks at the
 * completion ring for up to spin_us (IOMMU_NEST_QUEUE_WINDOW_SPIN_US),
 * without a system call (a CPU pause between looks; a sched_yield() every
 * 20 us), until a completion - or the daemon's closing of the queue - is
 * there. While it looks the daemon does not signal iommu_nest_queue_fd()
 * (the VMM is awake); when it returns, completions signal it again.
 * Returns 1 when there is one (run iommu_nest_process() to collect it), 0
 * when spin_us ran out, -ENOENT without a queue. Calling
 * iommu_nest_process() in a loop instead costs two system calls a look
 * (the socket and the call eventfd).
 */
int iommu_nest_queue_spin(struct iommu_nest *h, uint32_t spin_us);

/* ---- Administration ------------------------------------------------------ */
/*
 * Daemon-wide views for operators (iommu-nestctl status/clients/hwpts/
 * metrics). The daemon serves them, and iommu_nest_stats(), only to root
 * and to members of its [policy] admin_groups; anyone else gets -EPERM.
 * An admin may also invalidate any client's HWPT (iommu_nest_invalidate()
 * with that HWPT's id): over-invalidation only costs time, so a manual
 * flush of a live guest's HWPT is safe.
 *
 * Each call returns one allocation that the caller releases with free().
 */

#define IOMMU_NEST_NAME_MAX	64 /* device and client names, with the NUL */
#define IOMMU_NEST_COMM_MAX	16 /* /proc/PID/comm, with the NUL */
#define IOMMU_NEST_ATTACHED_MAX 8  /* devices listed per HWPT */
#define IOMMU_NEST_HIST_MAX	32 /* bucket bounds per histogram */

struct iommu_nest_device_status {
	char name[IOMMU_NEST_NAME_MAX];
	char kind[16];		/* "vtd" or "selftest" */
	uint32_t hwpt_id;	/* nested HWPT attached; 0: on its nest parent */
	uint64_t owner_session; /* session holding the device; 0: free */
	int32_t owner_pid;
	uint64_t mapped_bytes; /* guest memory on its stage 2 */
	uint32_t mappings;
};

/*
 * A latency histogram: count[i] samples fell in (bound_ns[i-1],
 * bound_ns[i]], count[n_bounds] above the last bound (not cumulative).
 */
struct iommu_nest_histogram {
	char name[IOMMU_NEST_NAME_MAX]; /* e.g. "invalidate_latency" */
	char help[128];
	uint32_t n_bounds;
	uint64_t bound_ns[IOMMU_NEST_HIST_MAX];
	uint64_t count[IOMMU_NEST_HIST_MAX + 1];
	uint64_t sum_ns;
	uint64_t samples;
};

struct iommu_nest_status {
	char daemon_version[32];
	char backend[16];
	char socket[108];
	int32_t pid;
	uint64_t uptime_ms;
	uint32_t clients;
	uint32_t hwpts;
	uint32_t orphans; /* HWPTs of a previous instance awaiting Reclaim */
	struct iommu_nest_stats totals;
	/*
	 * totals.pages_flushed saturates at the first flush-all; these do
	 * not: domain-wide flushes submitted, and the pages of the others.
	 */
	uint64_t flush_alls;
	uint64_t pages_flushed_ranged;
	size_t n_devices;
	struct iommu_nest_device_status *devices; /* inside the same allocation */
	size_t n_histograms;
	struct iommu_nest_histogram *histograms; /* inside the same allocation */
};

struct iommu_nest_client_info {
	uint64_t session;
	int32_t pid;
	uint32_t uid;
	uint32_t gid;
	char comm[IOMMU_NEST_COMM_MAX];
	char name[IOMMU_NEST_NAME_MAX]; /* the client_name it said Hello with */
	uint32_t hwpts;
	uint64_t requests;
	uint64_t errors;  /* requests answered with a non-zero status */
	uint64_t entries; /* invalidation entries received */
	uint64_t denials;
	uint32_t in_flight;
	uint64_t connected_ms;
	uint64_t mapped_bytes;
	int admin; /* 1 if it may send admin requests */
};

struct iommu_nest_hwpt_info {
	uint32_t id;
	uint32_t data_type; /* IOMMU_NEST_HWPT_DATA_* */
	uint32_t parent_id;
	char device[IOMMU_NEST_NAME_MAX];
	uint64_t owner_session; /* 0: an orphan awaiting Reclaim */
	int32_t owner_pid;
	uint32_t owner_uid;
	int orphan;
	uint32_t n_attached; /* may exceed IOMMU_NEST_ATTACHED_MAX; the list stops there */
	char attached[IOMMU_NEST_ATTACHED_MAX][IOMMU_NEST_NAME_MAX];
	uint64_t requests;
	uint64_t entries_received;
	uint64_t entries_submitted;
	uint64_t submissions;
	uint64_t pages_flushed; /* modelled; UINT64_MAX once a flush-all ran */
	uint64_t escalations;	/* plans widened to a domain flush-all */
	uint64_t entries_failed;
	uint64_t flush_alls;	       /* domain-wide flushes submitted */
	uint64_t pages_flushed_ranged; /* pages of all other submissions */
};

/* The daemon at a glance: counters, devices, latency histograms. */
int iommu_nest_status(struct iommu_nest *h, struct iommu_nest_status **status);

/* Every connected client, this one included: *n entries in *clients. */
int iommu_nest_list_clients(struct iommu_nest *h, struct iommu_nest_client_info **clients,
			    size_t *n);

/* Every nested HWPT the daemon holds, orphans included, by id. */
int iommu_nest_list_hwpts(struct iommu_nest *h, struct iommu_nest_hwpt_info **hwpts, size_t *n);

/*
 * Makes the daemon re-read its configuration file now, as SIGHUP does,
 * and waits for the outcome: 0 once the new configuration is in force, or
 * the negative errno (-EINVAL: the file does not parse, or changes a key
 * that only a restart applies) with the daemon's reason in
 * iommu_nest_last_error(); the running configuration is then kept.
 * An admin request (-EPERM otherwise). Since LIBIOMMU_NEST_0.4.
 */
int iommu_nest_reload(struct iommu_nest *h);

/* ---- Events: page faults (IOPF); since LIBIOMMU_NEST_0.9 ----------------- */

/*
 * Alloc flag (the kernel's IOMMU_HWPT_FAULT_ID_VALID): deliver the HWPT's
 * page faults to this client. The daemon makes the client's fault queue
 * and names it; the client never gives a fault id.
 */
#define IOMMU_NEST_ALLOC_FAULT (1u << 2)

/* Event kinds. */
#define IOMMU_NEST_EVENT_FAULT	1 /* a page fault (ev->fault) */
#define IOMMU_NEST_EVENT_VEVENT 2 /* a vEVENTQ record (ev->vevent); since LIBIOMMU_NEST_0.13 */

/* struct iommu_hwpt_pgfault's flags and perm bits. */
#define IOMMU_NEST_PGFAULT_FLAGS_PASID_VALID (1u << 0)
#define IOMMU_NEST_PGFAULT_FLAGS_LAST_PAGE   (1u << 1)
#define IOMMU_NEST_PGFAULT_PERM_READ	     (1u << 0)
#define IOMMU_NEST_PGFAULT_PERM_WRITE	     (1u << 1)
#define IOMMU_NEST_PGFAULT_PERM_EXEC	     (1u << 2)
#define IOMMU_NEST_PGFAULT_PERM_PRIV	     (1u << 3)

/* Page response codes (enum iommufd_page_response_code). */
#define IOMMU_NEST_PAGE_RESP_SUCCESS 0
#define IOMMU_NEST_PAGE_RESP_INVALID 1

/* One fault record (struct iommu_hwpt_pgfault) and where it happened. */
struct iommu_nest_page_fault {
	uint32_t flags;	 /* IOMMU_NEST_PGFAULT_FLAGS_* */
	uint32_t dev_id; /* the kernel's device object id */
	uint32_t pasid;
	uint32_t grpid;
	uint32_t perm; /* IOMMU_NEST_PGFAULT_PERM_* */
	uint32_t length;
	uint64_t addr;
	uint32_t cookie;  /* echo it in iommu_nest_page_response() */
	uint32_t hwpt_id; /* the HWPT the device was attached to (0: unknown) */
	char device[64];  /* the configured device name */
};

/*
 * One vEVENTQ record (struct iommufd_vevent_header and the type's data) and
 * the queue it came from. flags IOMMU_NEST_VEVENT_FLAG_LOST_EVENTS: the
 * kernel's queue overflowed its depth, no data follows. sequence is the
 * kernel's (0..INT_MAX, then 0 again): a gap is records the kernel dropped
 * (the event's `lost` counts the daemon's drops, a different thing).
 */
#define IOMMU_NEST_VEVENT_FLAG_LOST_EVENTS (1u << 0)
#define IOMMU_NEST_VEVENT_DATA_MAX	   32u
struct iommu_nest_vevent {
	uint32_t viommu_id;
	uint32_t veventq_id;
	uint32_t type; /* IOMMU_NEST_VEVENTQ_TYPE_* */
	uint32_t flags;
	uint32_t sequence;
	uint32_t data_len; /* selftest: 4 (the vDEVICE's virt_id), SMMUv3: 32 (the event record) */
	uint8_t data[IOMMU_NEST_VEVENT_DATA_MAX];
};

/*
 * The library owns the event and hands the handler a pointer: fields are
 * only ever added at the end (vevent since LIBIOMMU_NEST_0.13), so a
 * handler built against an older header reads what it knows.
 */
struct iommu_nest_event {
	uint32_t kind; /* IOMMU_NEST_EVENT_* */
	uint64_t seq;  /* 1, 2, ... counting dropped events too */
	/*
	 * Events dropped since the previous one delivered: the daemon's queue
	 * for this client was full ([policy] max_events) because it did not
	 * read. A dropped fault was answered INVALID by the daemon.
	 */
	uint64_t lost;
	struct iommu_nest_page_fault fault; /* kind FAULT */
	struct iommu_nest_vevent vevent;    /* kind VEVENT */
};

typedef void (*iommu_nest_event_cb)(struct iommu_nest *h, const struct iommu_nest_event *ev,
				    void *arg);

/*
 * Sets the handler of asynchronous events (NULL: drop them). It runs from
 * iommu_nest_process(), and at the end of any call that met events while
 * waiting for its reply (an event never satisfies a reply). It may call
 * the library (e.g. iommu_nest_page_response()), except iommu_nest_close().
 * Watch iommu_nest_fd() for POLLIN to learn of events between calls.
 */
int iommu_nest_set_event_handler(struct iommu_nest *h, iommu_nest_event_cb cb, void *arg);

struct iommu_nest_page_response {
	uint32_t grpid;	 /* the fault's grpid */
	uint32_t cookie; /* the fault's cookie */
	uint32_t code;	 /* IOMMU_NEST_PAGE_RESP_* */
};

/*
 * Answers a fault group this client was delivered, on its HWPT hwpt_id or
 * device (either may be 0/NULL, not both: -EINVAL). -ENOENT unless the
 * cookie and grpid are an unanswered fault delivered to this client there;
 * else the kernel's answer (-EINVAL: a code it does not take, or a cookie
 * it answered itself because the device left the HWPT).
 */
int iommu_nest_page_response(struct iommu_nest *h, uint32_t hwpt_id, const char *device,
			     const struct iommu_nest_page_response *r);

/* Test-only (test_requests): IOMMU_TEST_OP_TRIGGER_IOPF, count times (0: once). */
struct iommu_nest_iopf {
	uint32_t pasid; /* 0: none (no PASID_VALID flag) */
	uint32_t grpid;
	uint32_t perm;
	uint64_t addr;
};
int iommu_nest_trigger_iopf(struct iommu_nest *h, const char *device,
			    const struct iommu_nest_iopf *t, uint32_t count);

/* ---- vIOMMU and vDEVICE objects (Linux 7.x) ------------------------------ */

/*
 * A vIOMMU (IOMMU_VIOMMU_ALLOC) on the nest parent of device, of type
 * IOMMU_NEST_VIOMMU_TYPE_*; flags are the ioctl's (none is valid). The
 * kernel's answers pass through: a 6.12 kernel has no vIOMMU (-ENOTTY), a
 * driver without the type says -EOPNOTSUPP. Since LIBIOMMU_NEST_0.11.
 */
#define IOMMU_NEST_VIOMMU_TYPE_ARM_SMMUV3 1u
#define IOMMU_NEST_VIOMMU_TYPE_SELFTEST	  0xdeadbeefu
int iommu_nest_alloc_viommu(struct iommu_nest *h, const char *device, uint32_t type, uint32_t flags,
			    uint32_t *viommu_id);

/*
 * The resume token of the vIOMMU the last successful
 * iommu_nest_alloc_viommu() on h allocated (as iommu_nest_last_resume_token()
 * for a HWPT: a capability, -ENOENT from a daemon without restart support).
 * After a daemon restart iommu_nest_reclaim_viommu() takes the vIOMMU back
 * with it, for an owner that has no HWPT to reclaim: with it come its
 * vEVENTQs (their records queued meanwhile arrive in order) and the
 * vDEVICEs and vIOMMUs the same session made, or with VM contexts the whole
 * context. -ENOENT for a wrong id or token, another uid's, one already
 * reclaimed or reaped at the grace period's end; -EBUSY for a vIOMMU of
 * another VM context than this session's. Since LIBIOMMU_NEST_0.17.
 */
int iommu_nest_last_viommu_token(const struct iommu_nest *h,
				 uint8_t token[IOMMU_NEST_RESUME_TOKEN_LEN]);
int iommu_nest_reclaim_viommu(struct iommu_nest *h, uint32_t viommu_id,
			      const uint8_t token[IOMMU_NEST_RESUME_TOKEN_LEN]);

/*
 * A vDEVICE (IOMMU_VDEVICE_ALLOC): device as the guest sees it on
 * viommu_id, with the guest's id virt_id (an SMMUv3 vSID). -EEXIST when the
 * device has a vDEVICE or virt_id is taken. Since LIBIOMMU_NEST_0.11.
 */
int iommu_nest_alloc_vdevice(struct iommu_nest *h, uint32_t viommu_id, const char *device,
			     uint64_t virt_id, uint32_t *vdevice_id);

/*
 * IOMMU_DESTROY of a vIOMMU or vDEVICE of this client (kind
 * IOMMU_NEST_OBJECT_*): -EBUSY for a vIOMMU with vDEVICEs on it (the
 * kernel's), -ENOENT for anyone else's id. Since LIBIOMMU_NEST_0.11.
 */
#define IOMMU_NEST_OBJECT_VIOMMU  1u
#define IOMMU_NEST_OBJECT_VDEVICE 2u
#define IOMMU_NEST_OBJECT_VEVENTQ 3u /* since LIBIOMMU_NEST_0.13 */
int iommu_nest_destroy_object(struct iommu_nest *h, uint32_t kind, uint32_t id);

/*
 * A vEVENTQ (IOMMU_VEVENTQ_ALLOC) of type IOMMU_NEST_VEVENTQ_TYPE_* on a
 * vIOMMU of this client, holding at most depth records (1 to 2^19) before
 * the kernel drops them. Its records come to the event handler as
 * IOMMU_NEST_EVENT_VEVENT events, through the same bounded queue as
 * faults. The kernel's answers pass through: -EEXIST for a second one of
 * the type on the vIOMMU, -EINVAL for depth, -EOPNOTSUPP for type 0; the
 * vIOMMU is -EBUSY to destroy while it lives (IOMMU_NEST_OBJECT_VEVENTQ
 * destroys it). -ENOENT for anyone else's vIOMMU, -EOPNOTSUPP for a type
 * the daemon cannot parse, -ENOTTY on a kernel without vEVENTQs (6.12).
 * Since LIBIOMMU_NEST_0.13.
 */
#define IOMMU_NEST_VEVENTQ_TYPE_ARM_SMMUV3 1u
#define IOMMU_NEST_VEVENTQ_TYPE_SELFTEST   0xbeefbeefu
#define IOMMU_NEST_VEVENTQ_MAX_DEPTH	   (1u << 19)
int iommu_nest_alloc_veventq(struct iommu_nest *h, uint32_t viommu_id, uint32_t type,
			     uint32_t depth, uint32_t *veventq_id);

/*
 * Test-only (test_requests): IOMMU_TEST_OP_TRIGGER_VEVENT on a mock device
 * attached to a nested HWPT on a vIOMMU through its vDEVICE, count times
 * (0: once): a selftest record {virt_id} on the vIOMMU's selftest vEVENTQ
 * (-EOPNOTSUPP without one, -ENOENT when the device is not so attached).
 * Since LIBIOMMU_NEST_0.13.
 */
int iommu_nest_trigger_vevent(struct iommu_nest *h, const char *device, uint32_t count);

/*
 * As iommu_nest_alloc(), with a vIOMMU of this client as the parent
 * (IOMMU_HWPT_ALLOC with the vIOMMU as pt_id): the vIOMMU is -EBUSY to
 * destroy while the HWPT lives. Since LIBIOMMU_NEST_0.11.
 */
int iommu_nest_alloc_on_viommu(struct iommu_nest *h, const char *device, uint32_t viommu_id,
			       uint32_t data_type, uint32_t flags, uint32_t data_layout,
			       const void *data, size_t len, uint32_t *hwpt_id);

/*
 * IOMMU_HWPT_INVALIDATE on a vIOMMU id: n entries of entry_len bytes each
 * (0: the type's native size) in the driver's layout, data_type
 * IOMMU_NEST_VIOMMU_INV_DATA_*: struct iommu_nest_viommu_selftest_inv or
 * 16-byte SMMUv3 commands. Results as iommu_nest_invalidate(). Note the
 * selftest value equals the HWPT selftest type: the object kind, not the
 * type, says which layout is meant. Since LIBIOMMU_NEST_0.11.
 */
#define IOMMU_NEST_VIOMMU_INV_DATA_ARM_SMMUV3 1u
#define IOMMU_NEST_VIOMMU_INV_DATA_SELFTEST   0xdeadbeefu
#define IOMMU_NEST_VIOMMU_INV_SELFTEST_ALL    1u /* every cache slot; cache_id ignored */

/* struct iommu_viommu_invalidate_selftest, byte for byte. */
struct iommu_nest_viommu_selftest_inv {
	uint32_t flags;
	uint32_t vdev_id; /* the vDEVICE's virt_id */
	uint32_t cache_id;
};

int iommu_nest_invalidate_viommu(struct iommu_nest *h, uint32_t viommu_id, uint32_t data_type,
				 uint32_t entry_len, const void *entries, size_t n, uint32_t flags,
				 struct iommu_nest_entry_result *results,
				 struct iommu_nest_inv_summary *summary);

/* ---- PASIDs (Linux 7.x); since LIBIOMMU_NEST_0.14 ------------------------ */

/*
 * Alloc flag (the kernel's IOMMU_HWPT_ALLOC_PASID), for iommu_nest_alloc()
 * and iommu_nest_alloc_on_viommu(): a nested HWPT that may sit on a PASID.
 * A 6.12 kernel refuses it (-EOPNOTSUPP).
 */
#define IOMMU_NEST_ALLOC_PASID (1u << 3)

/*
 * Attaches hwpt_id (a nested HWPT of this client allocated with
 * IOMMU_NEST_ALLOC_PASID, or the nest parent under one, which the daemon
 * allocates PASID-capable where the device has PASIDs) to PASID pasid of
 * device, or replaces what that PASID has, as VFIO does. The kernel's
 * answers pass through: -EINVAL for a HWPT without the flag, a RID
 * (iommu_nest_attach()) on a HWPT without it, a PASID beyond the device's
 * width (iommu_nest_get_hw_info()'s max_pasid_log2); a HWPT on a PASID is
 * -EBUSY to destroy. PASID 0 is the RID: -EINVAL. -ENOENT for anyone
 * else's HWPT. Linux 6.12 has no PASID attachments (selftest mock:
 * -EOPNOTSUPP; VFIO: -EINVAL).
 */
int iommu_nest_attach_pasid(struct iommu_nest *h, const char *device, uint32_t pasid,
			    uint32_t hwpt_id);
/* Takes the HWPT off PASID pasid of device: 0 also when none was on it. */
int iommu_nest_detach_pasid(struct iommu_nest *h, const char *device, uint32_t pasid);

#ifdef __cplusplus
}
#endif

#endif /* IOMMU_NEST_H */
