package serving

import (
	"encoding/binary"
	"testing"
)

// FuzzDetect feeds the steady-state rule and the energy attribution
// arbitrary request timelines (including unsorted, overlapping, empty and
// failed requests): they must never panic, and a window must lie inside
// the load and attributed energy must not exceed the window's.
func FuzzDetect(f *testing.F) {
	f.Add([]byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15})
	f.Add(make([]byte, 64))
	f.Fuzz(func(t *testing.T, b []byte) {
		var ts []Trace
		for len(b) >= 8 {
			sent := int64(binary.LittleEndian.Uint16(b[0:2])) * 1e6
			first := sent + int64(b[2])*1e6
			n := int(b[3] % 16)
			step := int64(b[4]+1) * 1e5
			tr := Trace{Index: len(ts), ScheduledNs: sent, SentNs: sent, PromptTokens: int(b[5]), OutputTokens: n}
			for j := range n {
				tr.TokenNs = append(tr.TokenNs, first+int64(j)*step)
			}
			tr.EndNs = first + int64(n)*step
			if b[6]%7 == 0 {
				tr.Err = "fail"
			}
			ts = append(ts, tr)
			b = b[8:]
		}
		w, err := Detect(ts, SteadyParams{BinNs: 5e6, Tolerance: 0.3, MinSpanNs: 1e7})
		if err != nil {
			return
		}
		if w.EndNs <= w.StartNs {
			t.Fatalf("empty window %+v", w)
		}
		e := Attribute(ts, w.StartNs, w.EndNs, 1e6, func(b0, b1 int64) float64 { return float64(b1 - b0) })
		var sum float64
		for _, x := range e {
			sum += x
		}
		if sum > float64(w.EndNs-w.StartNs)*1.000001 {
			t.Fatalf("attributed %g of %d", sum, w.EndNs-w.StartNs)
		}
	})
}
