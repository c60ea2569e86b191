package tokenizer

import (
	"strings"
	"testing"
)

// BenchmarkEncode measures encoding speed on mixed English/non-ASCII text
// (bytes/s via SetBytes, and tokens/s). The word cache is cleared every
// iteration so the BPE merge loop is measured, not the cache.
func BenchmarkEncode(b *testing.B) {
	tok := mustLoad(b, tinyJSON(b, false, nil))
	text := strings.Repeat("hello the world, naïve café 日本語 12345 <|endoftext|>\n  tabs\tand spaces; ", 100)
	b.SetBytes(int64(len(text)))
	n := 0
	for b.Loop() {
		tok.mu.Lock()
		clear(tok.cache)
		tok.mu.Unlock()
		n += len(tok.Encode(text, false))
	}
	b.ReportMetric(float64(n)/b.Elapsed().Seconds(), "tokens/s")
}
