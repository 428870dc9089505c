/* SPDX-License-Identifier: MIT */
#include "util/latency_hist.h"

#include <time.h>

const uint64_t latency_hist_bound_ns[LATENCY_HIST_BOUNDS] = {
    1000,     2500,	 5000,	    10000,     25000,	   50000,    100000,
    250000,   500000,	 1000000,   2500000,   5000000,	   10000000, 25000000,
    50000000, 100000000, 250000000, 500000000, 1000000000,
};

void latency_hist_record(struct latency_hist *h, uint64_t ns)
{
	unsigned i = 0;

	/* Most samples are short: scanning from the bottom beats a bisection. */
	while (i < LATENCY_HIST_BOUNDS && ns > latency_hist_bound_ns[i])
		i++;
	h->count[i]++;
	h->sum_ns += ns;
	h->samples++;
}

