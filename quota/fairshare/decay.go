package fairshare

import (
	"math"
	"time"
)

// Beta is the weight kept by past usage after dt: 0.5^(dt/halfLife). It is 1 for dt ≤ 0 (no time passed).
func Beta(dt, halfLife time.Duration) float64 {
	if dt <= 0 {
		return 1
	}
	return math.Pow(0.5, float64(dt)/float64(halfLife))
}

// Decay returns the decayed usage after dt during which the current usage was u:
// U' = β·U + (1−β)·u, β = Beta(dt, halfLife). Negative inputs are treated as 0, so the result is never
// negative.
func Decay(prev, u float64, dt, halfLife time.Duration) float64 {
	prev, u = max(prev, 0), max(u, 0)
	b := Beta(dt, halfLife)
	return b*prev + (1-b)*u
}
