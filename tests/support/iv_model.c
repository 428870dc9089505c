/* SPDX-License-Identifier: MIT */
#include "iv_model.h"

#include <stdlib.h>

static int cmp_iv(const void *a, const void *b)
{
	const struct iv *x = a, *y = b;

	return x->s < y->s ? -1 : x->s > y->s;
}

size_t iv_merge(struct iv *v, size_t n)
{
	size_t w = 0;

	qsort(v, n, sizeof(*v), cmp_iv);
	for (size_t i = 0; i < n; i++) {
		if (w && v[i].s <= v[w - 1].e) {
			if (v[i].e > v[w - 1].e)
				v[w - 1].e = v[i].e;
		} else {
			v[w++] = v[i];
		}
	}
	return w;
}

bool iv_covered(const struct iv *v, size_t n, uint64_t s, uint64_t e)
{
	size_t lo = 0, hi = n;

	if (s == e)
		return true;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (v[mid].s <= s)
			lo = mid + 1;
		else
			hi = mid;
	}
	return lo > 0 && v[lo - 1].s <= s && v[lo - 1].e >= e;
}
