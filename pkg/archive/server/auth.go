package server

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"math"
	"strings"
	"sync"
	"time"
)

// TokenPrefix starts every archive token, so a leaked one is recognisable
// (and secret scanners can be taught it).
const TokenPrefix = "llema_"

// NewToken returns a fresh secret token (256 random bits) and the hash the
// store keeps. The secret is shown once and never stored.
func NewToken() (secret, hash string, err error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", "", err
	}
	secret = TokenPrefix + base64.RawURLEncoding.EncodeToString(b)
	return secret, HashToken(secret), nil
}

// HashToken is the stored form of a token: SHA-256 is enough for 256-bit
// random secrets (no dictionary to guess from), and fast per request.
func HashToken(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// credential extracts a token from "Authorization: Bearer TOKEN" or, for
// browsers (the browse page has no script to set headers), HTTP Basic
// with the token as the password.
func credential(header string) (string, bool) {
	scheme, rest, ok := strings.Cut(header, " ")
	if !ok {
		return "", false
	}
	switch strings.ToLower(scheme) {
	case "bearer":
		return strings.TrimSpace(rest), true
	case "basic":
		raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(rest))
		if err != nil {
			return "", false
		}
		_, pass, ok := strings.Cut(string(raw), ":")
		return pass, ok
	}
	return "", false
}

// limiter is a token bucket per key (a token's ID, or an anonymous
// client's address): rate per minute, bursts up to burst requests.
type limiter struct {
	mu      sync.Mutex
	buckets map[string]*bucket
	now     func() time.Time
}

type bucket struct {
	tokens float64
	last   time.Time
}

func newLimiter() *limiter {
	return &limiter{buckets: map[string]*bucket{}, now: time.Now}
}

// allow takes one request from key's bucket; when it is empty it returns
// false and how long until the next request would be allowed. A rate of 0
// is unlimited.
func (l *limiter) allow(key string, perMin int) (bool, time.Duration) {
	if perMin <= 0 {
		return true, 0
	}
	burst := math.Max(1, float64(perMin)/6) // ten seconds' worth
	rate := float64(perMin) / 60            // per second
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	b := l.buckets[key]
	if b == nil {
		if len(l.buckets) > 100_000 { // forget idle clients rather than grow without bound
			for k, v := range l.buckets {
				if now.Sub(v.last) > time.Minute {
					delete(l.buckets, k)
				}
			}
		}
		b = &bucket{tokens: burst, last: now}
		l.buckets[key] = b
	}
	b.tokens = math.Min(burst, b.tokens+now.Sub(b.last).Seconds()*rate)
	b.last = now
	if b.tokens >= 1 {
		b.tokens--
		return true, 0
	}
	wait := time.Duration((1 - b.tokens) / rate * float64(time.Second))
	return false, wait
}
