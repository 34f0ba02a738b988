package bench

import (
	"cmp"
	"slices"
	"time"
)

// Percentile is the nearest-rank p-th percentile of ds (p in 0..100);
// 0 for no samples.
func Percentile(ds []time.Duration, p float64) time.Duration {
	if len(ds) == 0 {
		return 0
	}
	s := slices.Clone(ds)
	slices.Sort(s)
	return s[rank(len(s), p)]
}

// Median is the median of xs (the upper one of an even count); 0 for none.
func Median[T cmp.Ordered](xs []T) T {
	if len(xs) == 0 {
		var zero T
		return zero
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	return s[len(s)/2]
}

// rank is the 0-based nearest-rank index of the p-th percentile of n.
func rank(n int, p float64) int {
	i := int(float64(n)*p/100+0.999999999) - 1
	return min(max(i, 0), n-1)
}
