package result

import (
	"fmt"
	"testing"
)

// BenchmarkCheckpoint is one slot transition (UpdateEntry: a journal line
// and its fsync) in a manifest of 3,000 and of 300,000 entries (100,000
// runs × 3 cycles): the cost must not grow with the study. Folding the
// journal into the snapshot, amortised over the transitions that filled
// it, is included.
func BenchmarkCheckpoint(b *testing.B) {
	for _, n := range []int{3_000, 300_000} {
		b.Run(fmt.Sprintf("entries=%d", n), func(b *testing.B) {
			m := Manifest{Study: "scale", Status: StudyRunning}
			m.Entries = make([]Entry, n)
			for i := range m.Entries {
				m.Entries[i] = Entry{RunID: fmt.Sprintf("%012x", i/3), Cycle: i%3 + 1, Position: i,
					Label: "native / random:llama-15m / fp32 / bs 1", Status: EntryPending}
			}
			s, err := CreateAt(b.TempDir(), m)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			pos := 0
			for b.Loop() {
				st := EntryRunning
				if pos%2 == 1 {
					st = EntryDone
				}
				if err := s.UpdateEntry(pos/2%n, func(e *Entry) { e.Status = st; e.Attempts++ }); err != nil {
					b.Fatal(err)
				}
				pos++
			}
		})
	}
}
