/* SPDX-License-Identifier: MIT */
/* iommu-nestctl metrics: the daemon's figures in OpenMetrics text format. */
#ifndef NESTCTL_METRICS_H
#define NESTCTL_METRICS_H

#include <stddef.h>
#include <stdio.h>

#include "iommu_nest.h"

enum metrics_format {
	METRICS_OPENMETRICS, /* OpenMetrics 1.0 text, ending in "# EOF" */
	/*
	 * The Prometheus text format 0.0.4 that node_exporter's textfile
	 * collector parses: counters typed under their _total names, the info
	 * family as a gauge, no UNIT or EOF lines.
	 */
	METRICS_PROMETHEUS,
};

/*
 * Writes one exposition: daemon counters and gauges, per-device gauges,
 * latency histograms, and per-HWPT counters labelled with the HWPT id and
 * device. Metric names start iommu_nestd_.
 */
void metrics_write(FILE *f, enum metrics_format fmt, const struct iommu_nest_status *st,
		   const struct iommu_nest_queue_stats *qs,
		   const struct iommu_nest_hwpt_info *hwpts, size_t n_hwpts);

#endif
