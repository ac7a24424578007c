package benchkit

import (
	"fmt"
	"slices"
	"time"
)

// Spread summarises repeated measurements.
type Spread struct {
	N                          int
	Min, P10, Median, P90, Max float64
}

// Summarize computes the spread of xs (nearest-rank percentiles).
func Summarize(xs []float64) Spread {
	if len(xs) == 0 {
		return Spread{}
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	rank := func(p float64) float64 {
		i := int(p*float64(len(s))+0.5) - 1
		return s[min(max(i, 0), len(s)-1)]
	}
	med := s[len(s)/2]
	if len(s)%2 == 0 {
		med = (s[len(s)/2-1] + s[len(s)/2]) / 2
	}
	return Spread{N: len(s), Min: s[0], P10: rank(0.10), Median: med, P90: rank(0.90), Max: s[len(s)-1]}
}

// Millis converts durations to milliseconds.
func Millis(ds []time.Duration) []float64 {
	out := make([]float64, len(ds))
	for i, d := range ds {
		out[i] = float64(d) / float64(time.Millisecond)
	}
	return out
}

// Format renders the spread with the given number format, e.g. "%.1f".
func (s Spread) Format(f string) string {
	return fmt.Sprintf("median "+f+" (min "+f+", p10 "+f+", p90 "+f+", max "+f+"; n=%d)", s.Median, s.Min, s.P10, s.P90, s.Max, s.N)
}
