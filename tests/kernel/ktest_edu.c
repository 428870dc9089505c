/* SPDX-License-Identifier: MIT */
/*
 * The edu tier: real VFIO devices doing real DMA through the daemon.
 *
 * Runs inside the test VM booted with an emulated VT-d and QEMU's edu
 * devices (run-qemu.sh --machine edu: two of them). It plays a VMM that
 * has no access to /dev/iommu: it binds both edus (1234:11e8) to vfio-pci,
 * starts the daemon (iommufd backend) with their VFIO cdevs as configured
 * devices edu0 and edu1 (edu0 alone for the restart phases 8 and 9, and
 * in the root mode, which hands no fd out while its one iommufd holds two
 * devices, for 1-7 as well), and then does everything else through
 * libiommu-nest and the device fds the daemon hands over.
 * Phases 1-9 are one VMM's, on edu0:
 *
 *   1. OpenDevice: the fd is a bound VFIO cdev (GET_INFO, config space,
 *      BAR0 mmap);
 *   1b. GetHwInfo (the walkthrough's step, test_walkthrough.c): the
 *      emulated VT-d's cap/ecap, NEST agreeing with the nest parent, a
 *      read-only map answered per the erratum rule;
 *   2. the emulated VT-d cannot nest: Alloc of a nested HWPT answers the
 *      kernel's EOPNOTSUPP with the reason, and the device still runs on a
 *      plain paging HWPT of its IOAS;
 *   3. MapMemory of a memfd; edu's DMA engine copies a pattern from one
 *      IOVA into the device and back to another IOVA: the bytes arrive;
 *   3b. drift: the VMM detaches the device with the fd (which it must
 *      not): its DMA reaches nothing until OpenDevice puts it back;
 *   4. UnmapMemory; the same device-to-RAM DMA no longer reaches memory
 *      (the destination keeps its marker);
 *   5. MapMemory again, CloseDevice: the fd the VMM still holds can no
 *      longer DMA into that memory either (the kernel logs the DMAR
 *      faults of 4 and 5); while it keeps the fd the device serves nobody,
 *      once it closes it the daemon binds afresh and OpenDevice works
 *      again; AdoptDevice is refused while the binding is handed out;
 *   6. on a fresh daemon, AdoptDevice (libvirt's way): a memfd and another
 *      character device are refused, a freshly opened cdev is bound in
 *      place of the daemon's and does DMA through the daemon's page table;
 *   7. that VMM dies without CloseDevice: its memory is unmapped, the fd
 *      it left behind cannot DMA into it, and while that fd stays open the
 *      device serves nobody (it would DMA wherever its holder programs
 *      it); once it is closed, the daemon binds afresh and another client
 *      may open the device;
 *   8. a daemon under fake_systemd (state file, fd store), a VMM with the
 *      device open, memory mapped and DMA working: the daemon is SIGKILLed;
 *      while it is down and once it is back the fd the VMM holds still
 *      does DMA into that memory; the VMM reclaims the claim with that fd
 *      (it has no nested HWPT, no token), and then UnmapMemory still cuts
 *      its DMA off and CloseDevice ends the claim (the store's copy of the
 *      old binding goes, so once the VMM closes its fd the device is
 *      bound afresh and serves again);
 *   9. the same crash without a Reclaim: at the grace period's end the
 *      claim ends as on the VMM's death (memory unmapped, the device
 *      serving nobody while the VMM keeps its fd, bound afresh once it
 *      closes it).
 *
 * 10 (run between 7 and 8): two VMMs, A in this process and B in a forked
 * one with its own connection. A claims edu0 and maps its memory, filled
 * with its pattern, at IOVA 1 MiB; B's OpenDevice, AdoptDevice,
 * MapMemory, UnmapMemory, CloseDevice, Alloc, SetDirtyTracking,
 * GetDirtyBitmap and Attach on edu0 are refused.
 * With VM contexts B opens edu1 (its ids equal A's: a second iommufd),
 * maps its own memory at 8 MiB and DMAs into it (so the rest is not
 * vacuous), then aims edu1's engine at A's IOVA: the read brings nothing
 * of A's into edu1, the write lands nowhere, the kernel logs both DMAR
 * faults with edu1 as requester, A's memory is byte for byte unchanged and
 * A's own DMA still works. In the root mode neither VMM gets a device fd
 * (-EPERM), so no device DMAs for B at all; the refusals and A's memory
 * are checked the same way.
 *
 * edu's engine (QEMU hw/misc/edu.c): 0x80 source, 0x88 destination, 0x90
 * count, 0x98 command (bit 0 start, bit 1 direction: 0 RAM to the device's
 * buffer at 0x40000, 1 the buffer to RAM); it masks addresses with a
 * 28-bit DMA mask, so IOVAs stay below 256 MiB. The daemon gets a config
 * of its own, written once the cdev exists. The engine finishes on a
 * timer: completion is polled on the command's start bit, bounded by
 * attempts, never by wall-clock time.
 *
 * Output is TAP-like; exit 0 when every check passed, 77 when the VM has
 * no edu device (QEMU without it), 1 otherwise.
 */
#include <dirent.h>
#include <errno.h>
#include <limits.h>
#include <fcntl.h>
#include <signal.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vfio.h>

#include "iommu_nest.h"

/* Linux 6.6+ (Debian 12's headers predate it): what a VMM must not do with the fd. */
#ifndef VFIO_DEVICE_DETACH_IOMMUFD_PT
#define VFIO_DEVICE_DETACH_IOMMUFD_PT _IO(VFIO_TYPE, VFIO_BASE + 20)
#endif

#define SKIP	 77
#define EDU_DEV	 "edu0"
#define EDU1_DEV "edu1"
#define SOCK	 "/run/nestd-edu.sock"
#define CONF	 "/tmp/nestd-edu.conf"

#define PAGE	 4096u
#define MEM_IOVA 0x100000ull /* below edu's 28-bit DMA mask */
#define MEM_SIZE (2u << 20)
#define SRC_OFF	 0u
#define DST_OFF	 (64u * PAGE)
/*
 * Less than edu's whole 4 KiB buffer: QEMU 7.2's range check wants the
 * transfer's end strictly inside the buffer and stops the VM otherwise.
 */
#define XFER 1024u

#define EDU_ID	       0x00
#define EDU_DMA_SRC    0x80
#define EDU_DMA_DST    0x88
#define EDU_DMA_CNT    0x90
#define EDU_DMA_CMD    0x98
#define EDU_CMD_START  0x1
#define EDU_CMD_TO_RAM 0x2
#define EDU_BUF	       0x40000
/* Each poll sleeps 1 ms of guest time; edu's timer fires after 100 ms of virtual time. */
#define DMA_POLLS 20000

static int n_checks, n_failed;

static void check(bool ok, const char *what)
{
	n_checks++;
	if (!ok)
		n_failed++;
	printf("%s %d - %s\n", ok ? "ok" : "not ok", n_checks, what);
	fflush(stdout);
}

static void checkf(bool ok, const char *fmt, const char *arg)
{
	char buf[512];

	snprintf(buf, sizeof(buf), fmt, arg);
	check(ok, buf);
}

static int write_file(const char *path, const char *val)
{
	int fd = open(path, O_WRONLY | O_CLOEXEC);
	ssize_t n;

	if (fd < 0)
		return -errno;
	n = write(fd, val, strlen(val));
	close(fd);
	return n == (ssize_t)strlen(val) ? 0 : -errno;
}

static bool read_hex(const char *dir, const char *name, unsigned *out)
{
	char path[512], buf[32];
	FILE *f;
	bool ok;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	f = fopen(path, "re");
	if (!f)
		return false;
	ok = fgets(buf, sizeof(buf), f) && sscanf(buf, "%x", out) == 1;
	fclose(f);
	return ok;
}

/*
 * The PCI addresses of the VM's edu devices (at most max), lowest first:
 * edu0 is the first, whatever order sysfs lists them in. 0: none.
 */
static int find_edus(char (*bdf)[NAME_MAX + 1], int max)
{
	DIR *d = opendir("/sys/bus/pci/devices");
	struct dirent *e;
	int n = 0;

	if (!d)
		return 0;
	while (n < max && (e = readdir(d))) {
		char dir[512];
		unsigned vendor, device;

		if (e->d_name[0] == '.')
			continue;
		snprintf(dir, sizeof(dir), "/sys/bus/pci/devices/%s", e->d_name);
		if (read_hex(dir, "vendor", &vendor) && read_hex(dir, "device", &device) &&
		    vendor == 0x1234 && device == 0x11e8)
			snprintf(bdf[n++], NAME_MAX + 1, "%s", e->d_name);
	}
	closedir(d);
	if (n == 2 && strcmp(bdf[0], bdf[1]) > 0) {
		char t[NAME_MAX + 1];

		memcpy(t, bdf[0], sizeof(t));
		memcpy(bdf[0], bdf[1], sizeof(t));
		memcpy(bdf[1], t, sizeof(t));
	}
	return n;
}

/* driver_override + drivers_probe, the way an operator hands a device to VFIO. */
static bool bind_vfio_pci(const char *bdf, char *cdev, size_t len)
{
	char path[512];
	DIR *d;
	struct dirent *e;
	bool found = false;

	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver_override", bdf);
	if (write_file(path, "vfio-pci"))
		return false;
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/driver/unbind", bdf);
	(void)write_file(path, bdf); /* bound to nothing yet: fine */
	(void)write_file("/sys/bus/pci/drivers_probe", bdf);
	snprintf(path, sizeof(path), "/sys/bus/pci/devices/%s/vfio-dev", bdf);
	d = opendir(path);
	if (!d)
		return false;
	while (!found && (e = readdir(d)))
		if (!strncmp(e->d_name, "vfio", 4)) {
			snprintf(cdev, len, "/dev/vfio/devices/%s", e->d_name);
			found = true;
		}
	closedir(d);
	return found && access(cdev, R_OK | W_OK) == 0;
}

static bool contexts_on(void)
{
	const char *v = getenv("NESTD_VM_CONTEXTS");

	return !v || strcmp(v, "0");
}

/*
 * A daemon with edu0 and, when cdev1 is given, edu1 configured; its
 * output goes to log when given (the console otherwise).
 */
static pid_t start_daemon(const char *cdev, const char *cdev1, const char *log)
{
	const char *daemon = getenv("NESTD_DAEMON");
	FILE *f = fopen(CONF, "we");
	pid_t pid;

	if (!f)
		return -1;
	fprintf(f,
		"[daemon]\nbackend = iommufd\niommufd = /dev/iommu\nlog_level = info\n%s\n"
		"[device " EDU_DEV "]\nkind = vtd\npath = %s\n",
		/* kernel/edu-root: the device in the daemon's one iommufd (root mode). */
		contexts_on() ? "" : "vm_contexts = false\n", cdev);
	if (cdev1)
		fprintf(f, "\n[device " EDU1_DEV "]\nkind = vtd\npath = %s\n", cdev1);
	fclose(f);
	unlink(SOCK);
	pid = fork();
	if (pid == 0) {
		if (log) {
			int fd = open(log, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);

			if (fd < 0 || dup2(fd, 1) < 0 || dup2(fd, 2) < 0)
				_exit(127);
		}
		execl(daemon ? daemon : "/usr/sbin/iommu-nestd", "iommu-nestd", "--socket", SOCK,
		      "--config", CONF, (char *)NULL);
		_exit(127);
	}
	return pid;
}

/* Connects once the daemon serves; bounded by attempts and by the daemon staying alive. */
static struct iommu_nest *connect_daemon(pid_t pid)
{
	struct iommu_nest *h = NULL;

	for (int i = 0; i < 6000; i++) {
		int st;

		if (iommu_nest_connect(SOCK, "ktest-edu", &h) == 0)
			return h;
		if (waitpid(pid, &st, WNOHANG) == pid)
			return NULL;
		usleep(10000);
	}
	return NULL;
}

struct region {
	uint64_t offset, size;
	uint32_t flags;
};

static bool region_info(int fd, uint32_t index, struct region *r)
{
	struct vfio_region_info ri = {.argsz = sizeof(ri), .index = index};

	if (ioctl(fd, VFIO_DEVICE_GET_REGION_INFO, &ri) < 0)
		return false;
	r->offset = ri.offset;
	r->size = ri.size;
	r->flags = ri.flags;
	return true;
}

/* Memory decoding and bus mastering in the command register, through the config region. */
static bool enable_bus_master(int fd)
{
	struct region cfg;
	uint16_t cmd;

	if (!region_info(fd, VFIO_PCI_CONFIG_REGION_INDEX, &cfg))
		return false;
	if (pread(fd, &cmd, 2, (off_t)(cfg.offset + 4)) != 2)
		return false;
	cmd |= 0x6; /* PCI_COMMAND_MEMORY | PCI_COMMAND_MASTER */
	return pwrite(fd, &cmd, 2, (off_t)(cfg.offset + 4)) == 2;
}

/*
 * BAR0 access: through the mmap while the VMM's claim lasts, through
 * region reads and writes afterwards (a reset may zap the mapping).
 */
struct bar {
	int fd;
	uint64_t offset;
	volatile uint32_t *map;
};

static uint32_t rd(const struct bar *b, uint32_t reg)
{
	uint32_t v = 0xffffffffu;

	if (b->map)
		return b->map[reg / 4];
	if (pread(b->fd, &v, 4, (off_t)(b->offset + reg)) != 4)
		return 0xffffffffu;
	return v;
}

static void wr(const struct bar *b, uint32_t reg, uint32_t v)
{
	if (b->map)
		b->map[reg / 4] = v;
	else if (pwrite(b->fd, &v, 4, (off_t)(b->offset + reg)) != 4)
		perror("edu register write");
}

/* One DMA transfer; true when the engine reported it done within DMA_POLLS. */
static bool edu_dma(const struct bar *b, uint32_t src, uint32_t dst, uint32_t cnt, bool to_ram)
{
	wr(b, EDU_DMA_SRC, src);
	wr(b, EDU_DMA_DST, dst);
	wr(b, EDU_DMA_CNT, cnt);
	wr(b, EDU_DMA_CMD, EDU_CMD_START | (to_ram ? EDU_CMD_TO_RAM : 0));
	for (int i = 0; i < DMA_POLLS; i++) {
		if (!(rd(b, EDU_DMA_CMD) & EDU_CMD_START))
			return true;
		usleep(1000);
	}
	return false;
}

static bool all_bytes(const uint8_t *p, size_t n, uint8_t v)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != v)
			return false;
	return true;
}

static void fill_pattern(uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + 3);
}

static bool is_pattern(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(i * 7 + 3))
			return false;
	return true;
}

/* /dev/kmsg from now on: the DMAR faults the blocked DMA makes the kernel log. */
static int kmsg_open(void)
{
	int fd = open("/dev/kmsg", O_RDONLY | O_NONBLOCK | O_CLOEXEC);

	if (fd >= 0)
		lseek(fd, 0, SEEK_END);
	return fd;
}

/*
 * Whether the kernel logged a DMAR fault at iova since kmsg_open(). The
 * fault is reported by an interrupt after the DMA: bounded by attempts.
 */
static bool dmar_fault_logged(int kfd, uint64_t iova)
{
	char rec[1024], want[64];

	snprintf(want, sizeof(want), "fault addr 0x%llx", (unsigned long long)iova);
	for (int i = 0; kfd >= 0 && i < 2000; i++) {
		ssize_t n = read(kfd, rec, sizeof(rec) - 1);

		if (n > 0) {
			rec[n] = 0;
			if (strstr(rec, "DMAR") && strstr(rec, want))
				return true;
		} else if (n < 0 && errno == EAGAIN) {
			usleep(1000);
		}
	}
	return false;
}

static int map_ram(struct iommu_nest *h, int memfd)
{
	return iommu_nest_map_memory(h, EDU_DEV, MEM_IOVA, MEM_SIZE, memfd, 0,
				     IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE);
}

/* 2: nesting refused clearly, the device served anyway. */
static void check_no_nesting(struct iommu_nest *h, const struct iommu_nest_device_info *info)
{
	uint32_t hwpt = 0;
	int rc;

	if (info->parent_id) {
		check(true, "# SKIP the host IOMMU nests: no refusal to check");
		return;
	}
	check(info->attached_id != 0, "without nesting the device is on a paging HWPT");
	rc = iommu_nest_alloc_vtd_s1(h, EDU_DEV, 0, 0x1000, 48, &hwpt);
	check(rc == -EOPNOTSUPP, "nested HWPT alloc on the emulated VT-d: -EOPNOTSUPP");
	checkf(strstr(iommu_nest_last_error(h), "cannot nest") &&
		   strstr(iommu_nest_last_error(h), "IOMMU_HWPT_ALLOC_NEST_PARENT"),
	       "... with the reason (%s)", iommu_nest_last_error(h));
}

/*
 * The walkthrough's hw_info step (tests/integration/test_walkthrough.c):
 * what QEMU reads of the host IOMMU behind the device before it builds
 * its vIOMMU, here the emulated VT-d. Its extended capabilities decide
 * nesting: the driver makes a nest parent only with ecap NEST
 * (intel/iommu.c nested_supported()), so the daemon's parent exists iff
 * the bit is set. With the read-only erratum the walk maps read-write
 * only, which map_ram() does either way.
 */
#define VTD_ECAP_NEST (1ull << 26)
static void check_hw_info(struct iommu_nest *h, const struct iommu_nest_device_info *info)
{
	struct iommu_nest_hw_info hw;
	char what[160];
	int ro_fd, rc, want;

	check(iommu_nest_get_hw_info(h, EDU_DEV, &hw) == 0, "GetHwInfo edu0");
	check(hw.data_type == IOMMU_NEST_HW_INFO_TYPE_INTEL_VTD && hw.data_len == 24,
	      "... the emulated VT-d's struct iommu_hw_info_vtd");
	snprintf(what, sizeof(what), "... cap 0x%llx ecap 0x%llx flags 0x%x caps 0x%llx",
		 (unsigned long long)hw.vtd.cap_reg, (unsigned long long)hw.vtd.ecap_reg,
		 hw.vtd.flags, (unsigned long long)hw.capabilities);
	check(hw.vtd.cap_reg != 0 && hw.vtd.ecap_reg != 0, what);
	check(((hw.vtd.ecap_reg & VTD_ECAP_NEST) != 0) == (info->parent_id != 0),
	      "... ecap NEST agrees with whether the daemon has a nest parent");
	/*
	 * The erratum bars read-only mappings on a nest parent only
	 * (intel_iommu_map()'s is_nested_parent check): on the paging
	 * HWPT a non-nesting host gives, a read-only map is taken.
	 */
	ro_fd = memfd_create("edu-rom", MFD_CLOEXEC);
	if (ro_fd < 0 || ftruncate(ro_fd, PAGE) != 0)
		return;
	want = info->parent_id && (hw.vtd.flags & IOMMU_NEST_HW_INFO_VTD_ERRATA_772415_SPR17)
		   ? -EINVAL
		   : 0;
	rc = iommu_nest_map_memory(h, EDU_DEV, MEM_IOVA, PAGE, ro_fd, 0, IOMMU_NEST_MAP_READABLE);
	check(rc == want, "... a read-only MapMemory answered as the driver's erratum rule says");
	if (rc == 0)
		check(iommu_nest_unmap_memory(h, EDU_DEV, MEM_IOVA, PAGE) == 0,
		      "... and unmapped again");
	close(ro_fd);
}

static void run(struct iommu_nest *h, const char *cdev)
{
	struct iommu_nest_device_info info;
	struct vfio_device_info vi = {.argsz = sizeof(vi)};
	struct region r0;
	struct bar bar = {.fd = -1};
	uint8_t *ram;
	int fd = -1, fd2 = -1, memfd, kfd = -1, adopt_fd;
	struct vfio_detach_pt {
		uint32_t argsz, flags;
	} detach;
	void *map;

	check(iommu_nest_open_device(h, EDU_DEV, &fd, &info) == 0, "OpenDevice edu0");
	if (fd < 0) {
		printf("# %s\n", iommu_nest_last_error(h));
		return;
	}
	check(ioctl(fd, VFIO_DEVICE_GET_INFO, &vi) == 0 && (vi.flags & VFIO_DEVICE_FLAGS_PCI),
	      "the handed fd is a bound VFIO PCI device (VFIO_DEVICE_GET_INFO)");
	check(vi.num_regions == info.num_regions && vi.flags == info.vfio_flags,
	      "the reply's GET_INFO matches the fd's");
	check_no_nesting(h, &info);

	check(enable_bus_master(fd), "bus mastering on through the config region");
	check(region_info(fd, VFIO_PCI_BAR0_REGION_INDEX, &r0) &&
		  (r0.flags & VFIO_REGION_INFO_FLAG_MMAP) && r0.size >= 0x100,
	      "BAR0 is mmappable");
	map = mmap(NULL, r0.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)r0.offset);
	check(map != MAP_FAILED, "mmap BAR0 from the handed fd");
	if (map == MAP_FAILED)
		return;
	bar = (struct bar){.fd = fd, .offset = r0.offset, .map = map};
	check((rd(&bar, EDU_ID) & 0xff) == 0xed, "edu's identification register through BAR0");
	/* The walkthrough's order: hw_info of the device before guest RAM is mapped. */
	check_hw_info(h, &info);

	memfd = memfd_create("edu-guest-ram", MFD_CLOEXEC);
	if (memfd < 0 || ftruncate(memfd, MEM_SIZE) != 0)
		return;
	ram = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (ram == MAP_FAILED)
		return;
	fill_pattern(ram + SRC_OFF, XFER);
	memset(ram + DST_OFF, 0, XFER);
	check(map_ram(h, memfd) == 0, "MapMemory of the memfd at IOVA 1 MiB");

	/* 3: RAM -> device -> RAM through the IOMMU. */
	check(edu_dma(&bar, MEM_IOVA + SRC_OFF, EDU_BUF, XFER, false), "DMA RAM -> edu done");
	check(edu_dma(&bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true), "DMA edu -> RAM done");
	check(is_pattern(ram + DST_OFF, XFER), "the pattern arrived at the other IOVA");

	/* Drift: the VMM moves its device itself, which it must not; the daemon undoes it. */
	detach = (struct vfio_detach_pt){.argsz = sizeof(detach)};
	check(ioctl(fd, VFIO_DEVICE_DETACH_IOMMUFD_PT, &detach) == 0,
	      "the VMM detaches its device with the fd (it must not)");
	memset(ram + DST_OFF, 0, XFER);
	check(edu_dma(&bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true) &&
		  all_bytes(ram + DST_OFF, XFER, 0),
	      "detached, its DMA reaches nothing");
	check(iommu_nest_open_device(h, EDU_DEV, &fd2, NULL) == 0,
	      "OpenDevice again: the daemon puts the device back");
	if (fd2 >= 0)
		close(fd2);
	fd2 = -1;
	check(edu_dma(&bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true) &&
		  is_pattern(ram + DST_OFF, XFER),
	      "back on the daemon's page table, the DMA arrives again");

	/* 4: unmapped, the same DMA does not reach memory. */
	check(iommu_nest_unmap_memory(h, EDU_DEV, MEM_IOVA, MEM_SIZE) == 0, "UnmapMemory");
	memset(ram + DST_OFF, 0x5a, XFER);
	kfd = kmsg_open();
	check(edu_dma(&bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true),
	      "DMA edu -> unmapped IOVA finished (faulted)");
	check(dmar_fault_logged(kfd, MEM_IOVA + DST_OFF), "the kernel logged the DMAR fault");
	check(all_bytes(ram + DST_OFF, XFER, 0x5a), "after UnmapMemory the DMA did not reach RAM");

	/* 5: CloseDevice ends the claim; the fd the VMM keeps reaches nothing of its memory. */
	check(map_ram(h, memfd) == 0, "MapMemory again");
	check(iommu_nest_close_device(h, EDU_DEV) == 0, "CloseDevice");
	munmap(map, r0.size);
	bar.map = NULL; /* a reset zaps BAR mappings: region writes from here on */
	check(enable_bus_master(fd), "the held fd still drives the device");
	check(edu_dma(&bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true),
	      "DMA edu -> RAM from the held fd finished (faulted)");
	check(dmar_fault_logged(kfd, MEM_IOVA + DST_OFF), "... and the kernel logged its fault");
	check(all_bytes(ram + DST_OFF, XFER, 0x5a),
	      "after CloseDevice the held fd cannot DMA to RAM");
	/* The VMM kept its fd: the device serves nobody, not even a new claim. */
	check(iommu_nest_open_device(h, EDU_DEV, &fd2, NULL) == -EBUSY,
	      "OpenDevice while a former holder keeps the fd: -EBUSY");
	checkf(strstr(iommu_nest_last_error(h), "still keeps its VFIO fd open") != NULL,
	       "... with the reason (%s)", iommu_nest_last_error(h));
	close(fd);
	fd = -1;
	check(iommu_nest_open_device(h, EDU_DEV, &fd2, NULL) == 0,
	      "once that fd is closed the daemon takes the device back: OpenDevice again");
	check(fd2 >= 0 && ioctl(fd2, VFIO_DEVICE_GET_INFO, &vi) == 0,
	      "the new fd is a fresh bound VFIO device");
	/* The binding is handed out again: nothing to adopt in its place. */
	adopt_fd = open(cdev, O_RDWR | O_CLOEXEC);
	check(adopt_fd >= 0 && iommu_nest_adopt_device(h, EDU_DEV, adopt_fd, NULL) == -EBUSY,
	      "AdoptDevice while the binding is handed out: -EBUSY");
	checkf(strstr(iommu_nest_last_error(h), "handed") != NULL, "... with the reason (%s)",
	       iommu_nest_last_error(h));
	if (adopt_fd >= 0)
		close(adopt_fd);
	if (fd2 >= 0)
		close(fd2);
	check(iommu_nest_close_device(h, EDU_DEV) == 0, "CloseDevice of the fd closed first");
	check(iommu_nest_close_device(h, EDU_DEV) == -ENOENT, "CloseDevice twice: -ENOENT");

	munmap(ram, MEM_SIZE);
	close(memfd);
	if (kfd >= 0)
		close(kfd);
}

/*
 * The libvirt way, on a fresh daemon whose binding nobody holds: the VMM's
 * side opens the cdev and passes it in; the daemon binds it in place of
 * its own, and the caller's fd does DMA through the daemon's page table.
 * Then the VMM dies without CloseDevice: the daemon's teardown unmaps its
 * memory and releases the device, so the fd left behind cannot DMA into
 * it, and another client may take the device.
 */
static void run_adopt(struct iommu_nest *h, const char *sock_cdev)
{
	struct iommu_nest_device_info info;
	struct iommu_nest *h2 = NULL;
	struct region r0;
	struct bar bar;
	uint8_t *ram;
	int fd, memfd, other, fd2 = -1, rc = -1;

	memfd = memfd_create("not-a-cdev", MFD_CLOEXEC);
	check(iommu_nest_adopt_device(h, EDU_DEV, memfd, NULL) == -ENOTTY,
	      "AdoptDevice of a memfd: -ENOTTY");
	other = open("/dev/null", O_RDWR | O_CLOEXEC);
	check(iommu_nest_adopt_device(h, EDU_DEV, other, NULL) == -EXDEV,
	      "AdoptDevice of another character device: -EXDEV");
	close(other);
	fd = open(sock_cdev, O_RDWR | O_CLOEXEC);
	check(fd >= 0 && iommu_nest_adopt_device(h, EDU_DEV, fd, &info) == 0,
	      "AdoptDevice of a freshly opened cdev");
	if (fd < 0 || ftruncate(memfd, MEM_SIZE) != 0)
		return;
	ram = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (ram == MAP_FAILED)
		return;
	fill_pattern(ram + SRC_OFF, XFER);
	memset(ram + DST_OFF, 0, XFER);
	check(map_ram(h, memfd) == 0, "MapMemory on the adopted device");
	check(enable_bus_master(fd) && region_info(fd, VFIO_PCI_BAR0_REGION_INDEX, &r0),
	      "the adopted fd drives the device");
	bar = (struct bar){.fd = fd, .offset = r0.offset, .map = NULL};
	check(edu_dma(&bar, MEM_IOVA + SRC_OFF, EDU_BUF, XFER, false) &&
		  edu_dma(&bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true) &&
		  is_pattern(ram + DST_OFF, XFER),
	      "DMA through the adopted binding: the pattern arrived");

	/* The VMM's death: its connection ends, nothing closed. */
	iommu_nest_close(h);
	memset(ram + DST_OFF, 0x5a, XFER);
	check(iommu_nest_connect(SOCK, "ktest-edu-next", &h2) == 0, "another client connects");
	/*
	 * The daemon sees the dead connection's end in its loop, maybe after
	 * this one's first request: "in use by another client" until then,
	 * bounded by attempts. Then the teardown has run, and the fd the dead
	 * VMM left behind (this process keeps it: a VMM that leaked it to a
	 * child) keeps the device out of service.
	 */
	for (int i = 0; h2 && i < 1000; i++) {
		rc = iommu_nest_open_device(h2, EDU_DEV, &fd2, NULL);
		if (rc != -EBUSY || strstr(iommu_nest_last_error(h2), "still keeps"))
			break;
		usleep(1000);
	}
	check(h2 && rc == -EBUSY, "after the VMM's death its leftover fd keeps the device busy");
	check(edu_dma(&bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true) &&
		  all_bytes(ram + DST_OFF, XFER, 0x5a),
	      "the dead VMM's fd cannot DMA into its memory any more");
	close(fd);
	check(h2 && iommu_nest_open_device(h2, EDU_DEV, &fd2, NULL) == 0,
	      "once it is closed another client may open the device");
	if (fd2 >= 0)
		close(fd2);
	iommu_nest_close(h2);
	munmap(ram, MEM_SIZE);
	close(memfd);
}

/* ---- 8: a restart under fake_systemd ------------------------------------ */

#define RS_DIR	 "/run/nestd-edu-rs"
#define RS_SOCK	 RS_DIR "/nestd.sock"
#define RS_CONF	 RS_DIR "/nestd.conf"
#define RS_LOG	 RS_DIR "/fake.log"
#define RS_PID	 RS_DIR "/daemon.pid"
#define RS_HOLD	 RS_DIR "/go"
#define RS_POLLS 6000 /* 10 ms each: bounded by attempts, a slow TCG guest included */

static bool file_has(const char *path, const char *needle)
{
	char buf[65536];
	size_t n;
	FILE *f = fopen(path, "re");

	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	return strstr(buf, needle) != NULL;
}

static bool wait_file_has(const char *path, const char *needle)
{
	for (int i = 0; i < RS_POLLS; i++) {
		if (file_has(path, needle))
			return true;
		usleep(10000);
	}
	return false;
}

static pid_t read_pid(void)
{
	FILE *f = fopen(RS_PID, "re");
	int pid = 0;

	if (f) {
		if (fscanf(f, "%d", &pid) != 1)
			pid = 0;
		fclose(f);
	}
	return pid;
}

/* fake_systemd, shipped next to this test (run-qemu.sh --file). */
static bool fake_path(char *out, size_t len)
{
	char self[PATH_MAX];
	ssize_t n = readlink("/proc/self/exe", self, sizeof(self) - 1);
	char *slash;

	if (n <= 0)
		return false;
	self[n] = 0;
	slash = strrchr(self, '/');
	if (!slash)
		return false;
	*slash = 0;
	snprintf(out, len, "%s/fake_systemd", self);
	return access(out, X_OK) == 0;
}

static pid_t start_fake_systemd(const char *cdev, unsigned grace_ms)
{
	const char *daemon = getenv("NESTD_DAEMON");
	char fake[PATH_MAX + 16];
	FILE *f;
	pid_t pid;

	if (!fake_path(fake, sizeof(fake)))
		return -1;
	mkdir(RS_DIR, 0700);
	/* A clean slate: the previous run's event log would answer this one's waits. */
	unlink(RS_LOG);
	unlink(RS_PID);
	unlink(RS_HOLD);
	f = fopen(RS_CONF, "we");
	if (!f)
		return -1;
	fprintf(f,
		"[daemon]\nbackend = iommufd\niommufd = /dev/iommu\nlog_level = info\n"
		"socket = %s\nstate_file = %s/state\nreclaim_grace_ms = %u\n%s\n"
		"[device " EDU_DEV "]\nkind = vtd\npath = %s\n",
		RS_SOCK, RS_DIR, grace_ms,
		/* Said either way: the fd store names below depend on it, not on the default. */
		contexts_on() ? "vm_contexts = true\n" : "vm_contexts = false\n", cdev);
	fclose(f);
	pid = fork();
	if (pid == 0) {
		execl(fake, "fake_systemd", "--socket", RS_SOCK, "--notify", RS_DIR "/notify",
		      "--log", RS_LOG, "--pidfile", RS_PID, "--max-starts", "2", "--hold-restart",
		      RS_HOLD, "--", daemon ? daemon : "/usr/sbin/iommu-nestd", "--config", RS_CONF,
		      (char *)NULL);
		_exit(127);
	}
	return pid;
}

static struct iommu_nest *rs_connect(const char *name)
{
	struct iommu_nest *h = NULL;

	for (int i = 0; i < RS_POLLS; i++) {
		if (iommu_nest_connect(RS_SOCK, name, &h) == 0)
			return h;
		usleep(10000);
	}
	return NULL;
}

/* The fd store event of the old binding's end: the root's entry, or the VM context's. */
static const char *old_binding_removed(void)
{
	return contexts_on() ? "REMOVE ctx.1.vfio." EDU_DEV : "REMOVE vfio." EDU_DEV;
}

/* One device -> RAM transfer of the pattern edu's buffer holds: whether it arrived. */
static bool dma_arrives(const struct bar *bar, uint8_t *ram)
{
	memset(ram + DST_OFF, 0, XFER);
	return edu_dma(bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true) &&
	       is_pattern(ram + DST_OFF, XFER);
}

/* The daemon SIGKILLed and held down; the VMM's fd checked meanwhile; then let back up. */
static struct iommu_nest *crash_daemon(const struct bar *bar, uint8_t *ram)
{
	pid_t old = read_pid();

	check(old > 0 && kill(old, SIGKILL) == 0, "the daemon is SIGKILLed");
	check(wait_file_has(RS_LOG, "HOLD"), "fake_systemd holds the restart");
	check(dma_arrives(bar, ram),
	      "while the daemon is down, the VMM's fd still does DMA into its memory");
	close(open(RS_HOLD, O_WRONLY | O_CREAT | O_CLOEXEC, 0600));
	check(wait_file_has(RS_LOG, "START 2 "), "fake_systemd restarts the daemon");
	return rs_connect("ktest-edu-after");
}

static void stop_fake_systemd(pid_t fake)
{
	int st;

	kill(fake, SIGTERM);
	check(waitpid(fake, &st, 0) == fake && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "fake_systemd and the daemon stopped cleanly");
	check(file_has(RS_LOG, "LEFT 0"), "the fd store is empty after the clean stop");
}

static void run_restart(const char *cdev)
{
	struct iommu_nest *h, *h2 = NULL;
	struct iommu_nest_device_info info;
	char name[IOMMU_NEST_NAME_MAX] = "";
	struct bar bar = {.fd = -1};
	struct region r0;
	uint8_t *ram = MAP_FAILED;
	int fd = -1, fd2 = -1, memfd = -1, kfd;
	pid_t fake = start_fake_systemd(cdev, 60000);
	void *map = MAP_FAILED;

	check(fake > 0, "fake_systemd (next to the test) runs the daemon with a state file");
	h = fake > 0 ? rs_connect("ktest-edu-before") : NULL;
	check(h != NULL, "connected to the daemon under fake_systemd");
	if (!h)
		goto out;
	check(iommu_nest_open_device(h, EDU_DEV, &fd, &info) == 0, "OpenDevice edu0");
	if (fd < 0 || !enable_bus_master(fd) || !region_info(fd, VFIO_PCI_BAR0_REGION_INDEX, &r0))
		goto out;
	map = mmap(NULL, r0.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)r0.offset);
	memfd = memfd_create("edu-guest-ram", MFD_CLOEXEC);
	if (map == MAP_FAILED || memfd < 0 || ftruncate(memfd, MEM_SIZE) != 0)
		goto out;
	ram = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (ram == MAP_FAILED)
		goto out;
	bar = (struct bar){.fd = fd, .offset = r0.offset, .map = map};
	fill_pattern(ram + SRC_OFF, XFER);
	check(map_ram(h, memfd) == 0, "MapMemory of the memfd");
	check(edu_dma(&bar, MEM_IOVA + SRC_OFF, EDU_BUF, XFER, false) && dma_arrives(&bar, ram),
	      "DMA RAM -> edu -> RAM before the crash");
	check(file_has(RS_DIR "/state", "\"claims\""), "the claim is in the state file");

	h2 = crash_daemon(&bar, ram);
	iommu_nest_close(h);
	h = NULL;
	check(h2 != NULL, "connected to the restarted daemon");
	if (!h2)
		goto out;
	check(dma_arrives(&bar, ram), "after the restart, the held fd still does DMA");
	check(iommu_nest_open_device(h2, EDU_DEV, &fd2, NULL) == -EBUSY,
	      "before Reclaim the device is held by the orphaned claim (-EBUSY)");
	check(iommu_nest_unmap_memory(h2, EDU_DEV, MEM_IOVA, MEM_SIZE) == -ENOENT,
	      "before Reclaim the memory is nobody's (-ENOENT)");
	check(iommu_nest_reclaim_device(h2, memfd, NULL) == -ENOENT,
	      "Reclaim with a descriptor that is not the device's: -ENOENT");
	check(iommu_nest_reclaim_device(h2, fd, name) == 0 && !strcmp(name, EDU_DEV),
	      "Reclaim of the claim with the held fd gives edu0 back");
	check(iommu_nest_reclaim_device(h2, fd, NULL) == -ENOENT, "a second Reclaim: -ENOENT");
	check(dma_arrives(&bar, ram), "reclaimed, the DMA still arrives");

	check(iommu_nest_unmap_memory(h2, EDU_DEV, MEM_IOVA, MEM_SIZE) == 0,
	      "UnmapMemory of the memory mapped before the crash");
	memset(ram + DST_OFF, 0x5a, XFER);
	kfd = kmsg_open();
	check(edu_dma(&bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true),
	      "DMA edu -> the unmapped IOVA finished (faulted)");
	/* The kernel rate-limits DMAR fault reports: earlier phases may have used them up. */
	printf("# DMAR fault %slogged\n", dmar_fault_logged(kfd, MEM_IOVA + DST_OFF) ? "" : "not ");
	check(all_bytes(ram + DST_OFF, XFER, 0x5a),
	      "after UnmapMemory the held fd's DMA no longer reaches RAM");
	if (kfd >= 0)
		close(kfd);
	check(iommu_nest_close_device(h2, EDU_DEV) == 0, "CloseDevice of the reclaimed claim");
	check(iommu_nest_open_device(h2, EDU_DEV, &fd2, NULL) == -EBUSY,
	      "while the VMM keeps its fd the device serves nobody");
	munmap(map, r0.size);
	map = MAP_FAILED;
	close(fd);
	fd = -1;
	/* The store's copy of the old binding goes first (FDSTOREREMOVE), then it can rebind. */
	check(wait_file_has(RS_LOG, old_binding_removed()), "the old binding left the fd store");
	check(iommu_nest_open_device(h2, EDU_DEV, &fd2, NULL) == 0,
	      "once the VMM closed its fd the device is bound afresh and opens again");
	if (fd2 >= 0)
		check(iommu_nest_close_device(h2, EDU_DEV) == 0, "and closes");
out:
	if (fd2 >= 0)
		close(fd2);
	if (map != MAP_FAILED)
		munmap(map, r0.size);
	if (fd >= 0)
		close(fd);
	if (ram != MAP_FAILED)
		munmap(ram, MEM_SIZE);
	if (memfd >= 0)
		close(memfd);
	if (h)
		iommu_nest_close(h);
	if (h2)
		iommu_nest_close(h2);
	if (fake > 0)
		stop_fake_systemd(fake);
}

/*
 * 9: the same crash, and the VMM never reclaims: at the grace period's end
 * the claim ends as on its death (memory unmapped: its DMA stops reaching
 * RAM), and while it keeps the fd the device serves nobody; once it
 * closes the fd the device is bound afresh and opens again.
 */
static void run_restart_grace(const char *cdev)
{
	struct iommu_nest *h, *h2 = NULL;
	struct bar bar = {.fd = -1};
	struct region r0;
	uint8_t *ram = MAP_FAILED;
	int fd = -1, fd2 = -1, memfd = -1;
	pid_t fake = start_fake_systemd(cdev, 2000);
	void *map = MAP_FAILED;

	h = fake > 0 ? rs_connect("ktest-edu-grace") : NULL;
	check(h != NULL, "connected to a daemon with a short grace period");
	if (!h)
		goto out;
	check(iommu_nest_open_device(h, EDU_DEV, &fd, NULL) == 0, "OpenDevice edu0");
	if (fd < 0 || !enable_bus_master(fd) || !region_info(fd, VFIO_PCI_BAR0_REGION_INDEX, &r0))
		goto out;
	map = mmap(NULL, r0.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)r0.offset);
	memfd = memfd_create("edu-guest-ram", MFD_CLOEXEC);
	if (map == MAP_FAILED || memfd < 0 || ftruncate(memfd, MEM_SIZE) != 0)
		goto out;
	ram = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, memfd, 0);
	if (ram == MAP_FAILED)
		goto out;
	bar = (struct bar){.fd = fd, .offset = r0.offset, .map = map};
	fill_pattern(ram + SRC_OFF, XFER);
	check(map_ram(h, memfd) == 0, "MapMemory of the memfd");
	check(edu_dma(&bar, MEM_IOVA + SRC_OFF, EDU_BUF, XFER, false) && dma_arrives(&bar, ram),
	      "DMA before the crash");
	h2 = crash_daemon(&bar, ram);
	iommu_nest_close(h);
	h = NULL;
	check(h2 != NULL, "connected to the restarted daemon");
	if (!h2)
		goto out;
	/* The grace period's end, seen from outside: the claim's end replaced the binding. */
	check(wait_file_has(RS_LOG, old_binding_removed()),
	      "unreclaimed, the claim ended at the grace period's end");
	memset(ram + DST_OFF, 0x5a, XFER);
	check(edu_dma(&bar, EDU_BUF, MEM_IOVA + DST_OFF, XFER, true) &&
		  all_bytes(ram + DST_OFF, XFER, 0x5a),
	      "its memory was unmapped: the held fd's DMA no longer reaches RAM");
	check(iommu_nest_reclaim_device(h2, fd, NULL) == -ENOENT, "too late to reclaim: -ENOENT");
	check(iommu_nest_open_device(h2, EDU_DEV, &fd2, NULL) == -EBUSY,
	      "while the VMM keeps its fd the device serves nobody");
	munmap(map, r0.size);
	map = MAP_FAILED;
	close(fd);
	fd = -1;
	check(iommu_nest_open_device(h2, EDU_DEV, &fd2, NULL) == 0,
	      "once that fd is closed the device is bound afresh and opens again");
	if (fd2 >= 0)
		check(iommu_nest_close_device(h2, EDU_DEV) == 0, "and closes");
out:
	if (fd2 >= 0)
		close(fd2);
	if (map != MAP_FAILED)
		munmap(map, r0.size);
	if (fd >= 0)
		close(fd);
	if (ram != MAP_FAILED)
		munmap(ram, MEM_SIZE);
	if (memfd >= 0)
		close(memfd);
	if (h)
		iommu_nest_close(h);
	if (h2)
		iommu_nest_close(h2);
	if (fake > 0)
		stop_fake_systemd(fake);
}

static bool stop_daemon(pid_t pid)
{
	int st;

	kill(pid, SIGTERM);
	return waitpid(pid, &st, 0) == pid && WIFEXITED(st) && WEXITSTATUS(st) == 0;
}

/* ---- 10: two tenants, the bystander's device doing real DMA ------------ */

#define A_IOVA	   MEM_IOVA    /* VMM A's guest RAM on edu0 */
#define B_IOVA	   0x800000ull /* VMM B's on edu1: apart from A's, below edu's DMA mask */
#define A_SEED	   3u	       /* fill_pattern()'s: A's bytes */
#define B_SEED	   0x51u
#define DST2_OFF   (128u * PAGE)
#define TENANT_LOG "/tmp/nestd-edu-tenants.log"
/*
 * intel/dmar.c dmar_fault() prints through a ratelimit of 10 messages per
 * 5 s (DEFAULT_RATELIMIT_*), two per fault: earlier phases may have used
 * the current window up. Once more than the interval has passed since the
 * last fault, the next one opens a new window (__ratelimit's rule), so the
 * faults this phase checks are printed however fast the guest runs.
 */
#define RATELIMIT_WAIT_S 6

static void fill_seeded(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(i * 7 + seed);
}

static bool is_seeded(const uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		if (p[i] != (uint8_t)(i * 7 + seed))
			return false;
	return true;
}

/* Like dmar_fault_logged(), and the fault's requester is the device at bdf. */
static bool dmar_fault_of(int kfd, uint64_t iova, const char *bdf)
{
	char rec[1024], want[64], dev[NAME_MAX + 2];

	snprintf(want, sizeof(want), "fault addr 0x%llx", (unsigned long long)iova);
	/* 6.12 prints [bus:dev.fn], 7.x [seg:bus:dev.fn]: both end in "bus:dev.fn]". */
	snprintf(dev, sizeof(dev), "%s]", strlen(bdf) > 5 ? bdf + 5 : bdf);
	for (int i = 0; kfd >= 0 && i < 2000; i++) {
		ssize_t n = read(kfd, rec, sizeof(rec) - 1);

		if (n > 0) {
			rec[n] = 0;
			if (strstr(rec, "DMAR") && strstr(rec, want) && strstr(rec, dev))
				return true;
		} else if (n < 0 && errno == EAGAIN) {
			usleep(1000);
		}
	}
	return false;
}

/* A device's BAR0, mmapped from its fd with memory decoding and bus mastering on. */
static bool open_bar(int fd, struct bar *bar, uint64_t *size)
{
	struct region r0;
	void *map;

	if (!enable_bus_master(fd) || !region_info(fd, VFIO_PCI_BAR0_REGION_INDEX, &r0))
		return false;
	map = mmap(NULL, r0.size, PROT_READ | PROT_WRITE, MAP_SHARED, fd, (off_t)r0.offset);
	if (map == MAP_FAILED)
		return false;
	*bar = (struct bar){.fd = fd, .offset = r0.offset, .map = map};
	*size = r0.size;
	return true;
}

static uint8_t *guest_ram(int *memfd, const char *name)
{
	uint8_t *ram;

	*memfd = memfd_create(name, MFD_CLOEXEC);
	if (*memfd < 0 || ftruncate(*memfd, MEM_SIZE) != 0)
		return NULL;
	ram = mmap(NULL, MEM_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, *memfd, 0);
	return ram == MAP_FAILED ? NULL : ram;
}

/* How many lines of path contain needle. */
static int count_lines(const char *path, const char *needle)
{
	char line[1024];
	int n = 0;
	FILE *f = fopen(path, "re");

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		n += strstr(line, needle) != NULL;
	fclose(f);
	return n;
}

/* The daemon's log on the console, as TAP comments. */
static void print_log(const char *path)
{
	char line[1024];
	FILE *f = fopen(path, "re");

	if (!f)
		return;
	while (fgets(line, sizeof(line), f))
		printf("# daemon| %s", line);
	fclose(f);
}

/* What A tells B (a pipe between the two processes) and B's tally back. */
struct a_to_b {
	struct iommu_nest_device_info a; /* A's edu0 (zero in the root mode) */
	int n_checks;
};

struct b_to_a {
	int n_checks, n_failed;
};

/* What edu1's buffer holds, seen by DMAing it into B's own memory at DST2_OFF. */
static bool b_buffer(const struct bar *bar, uint8_t *ram)
{
	memset(ram + DST2_OFF, 0xee, XFER);
	return edu_dma(bar, EDU_BUF, B_IOVA + DST2_OFF, XFER, true);
}

/* Uniform: every byte the first's (a fault's fill, say), no pattern of anyone's. */
static bool uniform(const uint8_t *p, size_t n)
{
	return all_bytes(p, n, p[0]);
}

/*
 * B, with VM contexts: its own device edu1, its own memory at B_IOVA, and
 * edu1's DMA engine aimed at A_IOVA, where A's memory is in A's context.
 */
static void b_dma(struct iommu_nest *b, const struct a_to_b *from_a, const char *bdf1)
{
	struct iommu_nest_device_info info;
	struct bar bar;
	uint64_t bar_size = 0;
	uint8_t *ram;
	int fd = -1, memfd = -1, kfd;
	bool read_done, write_done;

	check(iommu_nest_open_device(b, EDU1_DEV, &fd, &info) == 0, "B: OpenDevice edu1");
	if (fd < 0) {
		printf("# %s\n", iommu_nest_last_error(b));
		return;
	}
	/*
	 * Ids are per iommufd (an xarray of each context's objects): two
	 * devices bound at once with the same dev_id, IOAS and page table ids
	 * are bound to two iommufds. So B's edu1 sits in B's context, whose
	 * objects A's ids cannot name, by the kernel's rule.
	 */
	printf("# A: dev_id %u ioas %u hwpt %u; B: dev_id %u ioas %u hwpt %u\n", from_a->a.dev_id,
	       from_a->a.ioas_id, from_a->a.attached_id, info.dev_id, info.ioas_id,
	       info.attached_id);
	check(info.dev_id && info.dev_id == from_a->a.dev_id && info.ioas_id == from_a->a.ioas_id &&
		  info.attached_id == from_a->a.attached_id,
	      "B: edu1's ids equal A's edu0's while both are bound: B's device is in an iommufd "
	      "of its own");
	check(iommu_nest_attach(b, EDU_DEV, info.attached_id) == -EBUSY,
	      "B: Attach of its own page table to edu0: -EBUSY");
	ram = guest_ram(&memfd, "edu-vmm-b-ram");
	if (!ram || !open_bar(fd, &bar, &bar_size)) {
		check(false, "B: edu1's BAR0 and B's memfd");
		goto out;
	}
	fill_seeded(ram + SRC_OFF, XFER, B_SEED);
	check(iommu_nest_map_memory(b, EDU1_DEV, B_IOVA, MEM_SIZE, memfd, 0,
				    IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE) == 0,
	      "B: MapMemory of its memfd on edu1 at IOVA 8 MiB");

	/* Not vacuous: B's engine does reach B's own memory. */
	memset(ram + DST_OFF, 0, XFER);
	check(edu_dma(&bar, B_IOVA + SRC_OFF, EDU_BUF, XFER, false) &&
		  edu_dma(&bar, EDU_BUF, B_IOVA + DST_OFF, XFER, true) &&
		  is_seeded(ram + DST_OFF, XFER, B_SEED),
	      "B: edu1's DMA RAM -> edu -> RAM in B's own memory: B's pattern arrived");

	sleep(RATELIMIT_WAIT_S);
	kfd = kmsg_open();
	/* edu1's buffer holds B's pattern now; a read of A's IOVA must bring none of A's. */
	read_done = edu_dma(&bar, A_IOVA + SRC_OFF, EDU_BUF, XFER, false);
	check(read_done, "B: DMA A's IOVA -> edu1 finished (faulted)");
	check(dmar_fault_of(kfd, A_IOVA + SRC_OFF, bdf1),
	      "... the kernel logged a DMAR fault of edu1 at A's IOVA (read)");
	check(b_buffer(&bar, ram) && !is_seeded(ram + DST2_OFF, XFER, A_SEED) &&
		  (is_seeded(ram + DST2_OFF, XFER, B_SEED) || uniform(ram + DST2_OFF, XFER)),
	      "B: edu1's buffer holds nothing of A's (B's pattern or a uniform fill)");
	printf("# edu1's buffer after the read: %s (first byte 0x%02x)\n",
	       is_seeded(ram + DST2_OFF, XFER, B_SEED) ? "B's pattern, untouched" : "uniform",
	       ram[DST2_OFF]);

	/* B's pattern into edu1's buffer, and then at A's IOVA. */
	write_done = edu_dma(&bar, B_IOVA + SRC_OFF, EDU_BUF, XFER, false) &&
		     edu_dma(&bar, EDU_BUF, A_IOVA + DST_OFF, XFER, true);
	check(write_done, "B: DMA edu1 -> A's IOVA finished (faulted)");
	check(dmar_fault_of(kfd, A_IOVA + DST_OFF, bdf1),
	      "... the kernel logged a DMAR fault of edu1 at A's IOVA (write)");
	if (kfd >= 0)
		close(kfd);
	memset(ram + DST_OFF, 0, XFER);
	check(edu_dma(&bar, EDU_BUF, B_IOVA + DST_OFF, XFER, true) &&
		  is_seeded(ram + DST_OFF, XFER, B_SEED),
	      "B: and its DMA into its own memory still works");
	check(iommu_nest_close_device(b, EDU1_DEV) == 0, "B: CloseDevice edu1");
out:
	if (bar_size)
		munmap((void *)(uintptr_t)bar.map, bar_size);
	if (ram)
		munmap(ram, MEM_SIZE);
	if (memfd >= 0)
		close(memfd);
	if (fd >= 0)
		close(fd);
}

/*
 * B in the root mode: one iommufd holds both devices' page tables, so the
 * daemon hands no device fd out (a holder could attach it to the other
 * device's page table): nobody, B included, gets a DMA engine through it.
 */
static void b_root(struct iommu_nest *b, const char *cdev1)
{
	int fd = -1, cfd, memfd = -1;
	uint8_t *ram;

	check(iommu_nest_open_device(b, EDU1_DEV, &fd, NULL) == -EPERM,
	      "B (root mode): OpenDevice edu1 with two devices in one iommufd: -EPERM");
	checkf(strstr(iommu_nest_last_error(b), "VFIO_DEVICE_ATTACH_IOMMUFD_PT") != NULL,
	       "... with the reason (%s)", iommu_nest_last_error(b));
	cfd = open(cdev1, O_RDWR | O_CLOEXEC);
	check(cfd >= 0 && iommu_nest_adopt_device(b, EDU1_DEV, cfd, NULL) == -EPERM,
	      "B (root mode): AdoptDevice of edu1's cdev: -EPERM");
	if (cfd >= 0)
		close(cfd);
	ram = guest_ram(&memfd, "edu-vmm-b-ram");
	check(ram && iommu_nest_map_memory(b, EDU1_DEV, B_IOVA, MEM_SIZE, memfd, 0,
					   IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE) == 0,
	      "B (root mode): MapMemory on its own edu1");
	if (ram)
		munmap(ram, MEM_SIZE);
	if (memfd >= 0)
		close(memfd);
	if (fd >= 0)
		close(fd);
}

/* VMM B: a process of its own with its own connection; A's edu0 is A's. */
static int vmm_b(int rfd, int wfd, const char *cdev0, const char *cdev1, const char *bdf1)
{
	struct a_to_b from_a;
	struct b_to_a to_a;
	struct iommu_nest *b = NULL;
	int fd = -1, cfd, memfd = -1, bm;
	uint32_t hwpt = 0;
	uint8_t *ram;

	if (read(rfd, &from_a, sizeof(from_a)) != (ssize_t)sizeof(from_a))
		return 1; /* A gave up */
	n_checks = from_a.n_checks;
	n_failed = 0;
	check(iommu_nest_connect(SOCK, "ktest-edu-vmm-b", &b) == 0,
	      "B: a second VMM process connects");
	if (!b)
		goto out;
	check(iommu_nest_open_device(b, EDU_DEV, &fd, NULL) == -EBUSY,
	      "B: OpenDevice of A's edu0: -EBUSY");
	checkf(strstr(iommu_nest_last_error(b), "in use by another client") != NULL,
	       "... with the reason (%s)", iommu_nest_last_error(b));
	cfd = open(cdev0, O_RDWR | O_CLOEXEC);
	check(cfd >= 0 && iommu_nest_adopt_device(b, EDU_DEV, cfd, NULL) == -EBUSY,
	      "B: AdoptDevice of edu0's cdev it opened itself: -EBUSY");
	if (cfd >= 0)
		close(cfd);
	ram = guest_ram(&memfd, "edu-vmm-b-ram0");
	check(ram && iommu_nest_map_memory(b, EDU_DEV, A_IOVA, MEM_SIZE, memfd, 0,
					   IOMMU_NEST_MAP_READABLE | IOMMU_NEST_MAP_WRITEABLE) ==
			 -EBUSY,
	      "B: MapMemory of its memfd on edu0 (at A's IOVA): -EBUSY");
	check(iommu_nest_unmap_memory(b, EDU_DEV, A_IOVA, MEM_SIZE) == -ENOENT,
	      "B: UnmapMemory of A's range on edu0: -ENOENT");
	check(iommu_nest_close_device(b, EDU_DEV) == -ENOENT, "B: CloseDevice of edu0: -ENOENT");
	/* A HWPT on edu0 would sit on A's stage 2: busy before nesting is even asked. */
	check(iommu_nest_alloc_vtd_s1(b, EDU_DEV, 0, 0x1000, 48, &hwpt) == -EBUSY,
	      "B: Alloc of a HWPT on edu0: -EBUSY");
	/* A's dirty bits are A's: neither switched nor read by B. */
	check(iommu_nest_set_dirty_tracking(b, EDU_DEV, 1) == -EBUSY,
	      "B: SetDirtyTracking on edu0: -EBUSY");
	bm = memfd_create("edu-vmm-b-bitmap", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	check(bm >= 0 && ftruncate(bm, PAGE) == 0 && fcntl(bm, F_ADD_SEALS, F_SEAL_SHRINK) == 0 &&
		  iommu_nest_get_dirty_bitmap(b, EDU_DEV, A_IOVA, MEM_SIZE, PAGE, 0, bm) == -EBUSY,
	      "B: GetDirtyBitmap of A's range on edu0: -EBUSY");
	if (bm >= 0)
		close(bm);
	if (ram)
		munmap(ram, MEM_SIZE);
	if (memfd >= 0)
		close(memfd);
	if (contexts_on())
		b_dma(b, &from_a, bdf1);
	else
		b_root(b, cdev1);
	iommu_nest_close(b);
out:
	to_a = (struct b_to_a){.n_checks = n_checks, .n_failed = n_failed};
	return write(wfd, &to_a, sizeof(to_a)) == (ssize_t)sizeof(to_a) ? 0 : 1;
}

/*
 * 10: two VMMs on one daemon, edu0 and edu1 configured. A (this process)
 * claims edu0 and maps its memory, filled with its pattern, at A_IOVA; B,
 * a forked process with its own connection, is refused everything on
 * edu0, and with VM contexts drives edu1's DMA engine at A_IOVA: the
 * kernel faults it, A's memory stays byte for byte what it was, and A's
 * own DMA still works afterwards.
 */
static void run_tenants(const char *cdev0, const char *cdev1, const char *bdf1)
{
	struct a_to_b to_b = {.n_checks = 0};
	struct b_to_a from_b = {0};
	struct iommu_nest *a = NULL;
	struct bar bar = {.fd = -1};
	uint64_t bar_size = 0;
	uint8_t *ram = NULL, *copy = NULL;
	int fd = -1, memfd = -1, ab[2] = {-1, -1}, ba[2] = {-1, -1}, st;
	bool ctx = contexts_on(), got;
	pid_t pid, child = -1;

	pid = start_daemon(cdev0, cdev1, TENANT_LOG);
	a = pid > 0 ? connect_daemon(pid) : NULL;
	check(a != NULL, "two tenants: a daemon with edu0 and edu1 serves VMM A");
	if (!a || pipe2(ab, O_CLOEXEC) || pipe2(ba, O_CLOEXEC))
		goto out;
	/* B first, before A holds anything it could inherit. */
	child = fork();
	if (child == 0) {
		close(ab[1]);
		close(ba[0]);
		_exit(vmm_b(ab[0], ba[1], cdev0, cdev1, bdf1));
	}
	close(ab[0]);
	close(ba[1]);
	ab[0] = ba[1] = -1;

	ram = guest_ram(&memfd, "edu-vmm-a-ram");
	copy = malloc(MEM_SIZE);
	if (!ram || !copy)
		goto out;
	fill_seeded(ram, MEM_SIZE, A_SEED);
	if (ctx) {
		check(iommu_nest_open_device(a, EDU_DEV, &fd, &to_b.a) == 0, "A: OpenDevice edu0");
		check(fd >= 0 && open_bar(fd, &bar, &bar_size), "A: edu0's BAR0 from its fd");
	} else {
		/* The root mode's rule, seen by A as well: two devices, no fd handed out. */
		check(iommu_nest_open_device(a, EDU_DEV, &fd, NULL) == -EPERM,
		      "A (root mode): OpenDevice edu0 with two devices in one iommufd: -EPERM");
	}
	check(map_ram(a, memfd) == 0, "A: MapMemory of its memfd (A's pattern) at IOVA 1 MiB");
	if (bar_size) {
		memset(ram + DST_OFF, 0, XFER);
		check(edu_dma(&bar, A_IOVA + SRC_OFF, EDU_BUF, XFER, false) &&
			  edu_dma(&bar, EDU_BUF, A_IOVA + DST_OFF, XFER, true) &&
			  is_seeded(ram + DST_OFF, XFER, A_SEED),
		      "A: edu0's DMA in A's memory works");
	}
	memcpy(copy, ram, MEM_SIZE);

	to_b.n_checks = n_checks;
	if (write(ab[1], &to_b, sizeof(to_b)) != (ssize_t)sizeof(to_b))
		goto out;
	/* B's checks are numbered on from A's; its tally joins A's before A checks on. */
	got = read(ba[0], &from_b, sizeof(from_b)) == (ssize_t)sizeof(from_b);
	if (got && from_b.n_checks >= n_checks) {
		n_failed += from_b.n_failed;
		n_checks = from_b.n_checks;
	}
	check(got, "B reported its checks");
	check(waitpid(child, &st, 0) == child && WIFEXITED(st) && WEXITSTATUS(st) == 0,
	      "VMM B's process exited cleanly");
	child = -1;

	check(memcmp(ram, copy, MEM_SIZE) == 0,
	      "A: all of A's memory is byte for byte what it was before B");
	if (bar_size) {
		memset(ram + DST2_OFF, 0, XFER);
		check(edu_dma(&bar, A_IOVA + SRC_OFF, EDU_BUF, XFER, false) &&
			  edu_dma(&bar, EDU_BUF, A_IOVA + DST2_OFF, XFER, true) &&
			  is_seeded(ram + DST2_OFF, XFER, A_SEED),
		      "A: after all of B's attempts edu0's DMA in A's memory still works");
	}
	check(iommu_nest_unmap_memory(a, EDU_DEV, A_IOVA, MEM_SIZE) == 0,
	      "A: its mapping is still its own to unmap");
	if (ctx) {
		check(iommu_nest_close_device(a, EDU_DEV) == 0, "A: CloseDevice edu0");
		/* Each VMM had a context of its own, opened at its first claim. */
		check(count_lines(TENANT_LOG, "VM context opened") == 2,
		      "the daemon opened two VM contexts, one per VMM");
	}
out:
	if (child > 0) {
		kill(child, SIGKILL);
		waitpid(child, &st, 0);
	}
	for (int i = 0; i < 2; i++) {
		if (ab[i] >= 0)
			close(ab[i]);
		if (ba[i] >= 0)
			close(ba[i]);
	}
	if (bar_size)
		munmap((void *)(uintptr_t)bar.map, bar_size);
	if (fd >= 0)
		close(fd);
	if (ram)
		munmap(ram, MEM_SIZE);
	free(copy);
	if (memfd >= 0)
		close(memfd);
	if (a)
		iommu_nest_close(a);
	if (pid > 0)
		check(stop_daemon(pid), "the two-tenant daemon exited cleanly");
	print_log(TENANT_LOG);
}

int main(void)
{
	char bdf[2][NAME_MAX + 1], cdev[NAME_MAX + 32], cdev1[NAME_MAX + 32] = "";
	struct iommu_nest *h;
	int n_edu;
	/*
	 * The phases of one VMM run with edu1 configured as well, except in
	 * the root mode: there the daemon hands no device fd out while its one
	 * iommufd holds two devices (phase 10 checks that rule).
	 */
	const char *also1;
	pid_t pid;

	setvbuf(stdout, NULL, _IOLBF, 0);
	n_edu = find_edus(bdf, 2);
	if (!n_edu) {
		printf("# SKIP no edu PCI device (1234:11e8) in this VM\n");
		return SKIP;
	}
	printf("# edu at %s%s%s\n", bdf[0], n_edu > 1 ? ", a second at " : "",
	       n_edu > 1 ? bdf[1] : "");
	check(bind_vfio_pci(bdf[0], cdev, sizeof(cdev)), "edu bound to vfio-pci, cdev present");
	check(n_edu == 2 && bind_vfio_pci(bdf[1], cdev1, sizeof(cdev1)),
	      "the second edu bound to vfio-pci, cdev present");
	if (n_failed)
		return 1;
	printf("# VFIO cdevs %s, %s\n", cdev, cdev1);
	also1 = contexts_on() ? cdev1 : NULL;
	pid = start_daemon(cdev, also1, NULL);
	check(pid > 0, "daemon started");
	h = pid > 0 ? connect_daemon(pid) : NULL;
	check(h != NULL, "connected to the daemon (iommufd backend, edu0 configured)");
	if (h) {
		run(h, cdev);
		iommu_nest_close(h);
	}
	if (pid > 0)
		check(stop_daemon(pid), "daemon exited cleanly");

	/* A fresh daemon, whose binding nobody else holds: adopting. */
	pid = start_daemon(cdev, also1, NULL);
	h = pid > 0 ? connect_daemon(pid) : NULL;
	check(h != NULL, "a fresh daemon serves edu0");
	if (h)
		run_adopt(h, cdev); /* ends h */
	if (pid > 0)
		check(stop_daemon(pid), "the fresh daemon exited cleanly");

	/* Two VMMs, the second one's device DMAing at the first one's memory. */
	run_tenants(cdev, cdev1, bdf[1]);

	/* A crash of the daemon while the VMM holds the device. */
	run_restart(cdev);
	run_restart_grace(cdev);
	printf("# %d checks, %d failed\n", n_checks, n_failed);
	return n_failed ? 1 : 0;
}
