/* SPDX-License-Identifier: MIT */
/*
 * splitmix64 for test data: tiny, seedable, reproducible from a printed
 * seed. One generator for every randomised unit test.
 */
#ifndef IOMMU_NESTD_TEST_RNG_H
#define IOMMU_NESTD_TEST_RNG_H

#include <stdint.h>

/* Restart the sequence; print the seed so a failure can be replayed. */
void rng_seed(uint64_t seed);
uint64_t rnd(void);
/* Uniform enough in [0, n); 0 for n == 0. */
uint64_t rnd_below(uint64_t n);

#endif
