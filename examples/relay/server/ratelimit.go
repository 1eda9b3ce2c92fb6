package server

import (
	"math"
	"sync"
	"time"
)

// limiter is a token bucket per client IP: rate tokens a second, at most
// burst. A request takes one token; an empty bucket is 429.
type limiter struct {
	rate  float64
	burst float64
	mu    sync.Mutex
	m     map[string]*bucket
}

type bucket struct {
	tokens float64
	last   time.Time
}

// maxBuckets bounds the IPs tracked; past it, full (idle) buckets are
// forgotten, which changes nothing for them.
const maxBuckets = 100_000

func newLimiter(rate float64, burst int) *limiter {
	return &limiter{rate: rate, burst: float64(burst), m: map[string]*bucket{}}
}

// allow takes a token for ip at now, or reports how long until one is free.
func (l *limiter) allow(ip string, now time.Time) (bool, time.Duration) {
	return l.allowN(ip, now, 1)
}

// allowN takes n tokens for ip at now, all or none, or reports how long
// until n are free. n must not exceed the burst (the caller checks).
func (l *limiter) allowN(ip string, now time.Time, n int) (bool, time.Duration) {
	if l.rate < 0 || n <= 0 {
		return true, 0
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	b := l.m[ip]
	if b == nil {
		if len(l.m) >= maxBuckets {
			l.sweep(now)
		}
		b = &bucket{tokens: l.burst, last: now}
		l.m[ip] = b
	}
	b.tokens = math.Min(l.burst, b.tokens+now.Sub(b.last).Seconds()*l.rate)
	b.last = now
	if want := float64(n); b.tokens >= want {
		b.tokens -= want
		return true, 0
	}
	return false, time.Duration((float64(n) - b.tokens) / l.rate * float64(time.Second))
}

func (l *limiter) sweep(now time.Time) {
	for ip, b := range l.m {
		if b.tokens+now.Sub(b.last).Seconds()*l.rate >= l.burst {
			delete(l.m, ip)
		}
	}
}
