// Package storetest is the conformance suite every archive store passes:
// the same tests against SQLite and PostgreSQL.
package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/archive/archivetest"
	"github.com/llenergymeasure/llem/pkg/archive/store"
	"github.com/llenergymeasure/llem/pkg/archive/verify"
)

// Checked verifies a generated record (failing the test on a rejection).
func Checked(t testing.TB, s archivetest.Spec) *verify.Record {
	t.Helper()
	r, rj := verify.Check(archivetest.Push(archivetest.Record(s)))
	if rj != nil {
		t.Fatalf("generated record rejected: %v", rj)
	}
	return r
}

// Run runs the suite; open returns a fresh, migrated store for each test.
func Run(t *testing.T, open func(t *testing.T) store.Store) {
	ctx := context.Background()
	push := store.Push{ID: "p1", TokenID: 1, ClientVersion: "0.9.0", ClientCommit: "abc1234", At: time.Now()}

	t.Run("MigrateIsIdempotent", func(t *testing.T) {
		s := open(t)
		v1, err := s.SchemaVersion(ctx)
		if err != nil || v1 < 1 {
			t.Fatalf("version %d %v", v1, err)
		}
		v2, err := s.Migrate(ctx)
		if err != nil || v2 != v1 {
			t.Fatalf("second migrate: %d %v", v2, err)
		}
	})

	t.Run("PutGetDuplicate", func(t *testing.T) {
		s := open(t)
		a := Checked(t, archivetest.Spec{Cycle: 1})
		b := Checked(t, archivetest.Spec{Cycle: 2})
		res, err := s.Put(ctx, push, []*verify.Record{a, b})
		if err != nil || len(res) != 2 || res[0].Duplicate || res[1].Duplicate {
			t.Fatalf("put: %+v %v", res, err)
		}
		res, err = s.Put(ctx, push, []*verify.Record{b, a})
		if err != nil || !res[0].Duplicate || !res[1].Duplicate || res[0].Verdict != verify.Consistent {
			t.Fatalf("second put: %+v %v", res, err)
		}
		if n, _ := s.Count(ctx, store.Filter{}); n != 2 {
			t.Fatalf("stored %d, want 2", n)
		}
		got, err := s.Get(ctx, a.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		if string(got.Record) != string(a.Canonical) || got.Model != a.Meta.Model || got.GPU != a.Meta.GPU || got.Cycle != 1 ||
			!got.StartedAt.Equal(a.Meta.StartedAt) || got.EnergyPerOutputTokenJ == nil || got.PushID != "p1" {
			t.Fatalf("stored record differs: %+v", got.Row)
		}
		if _, err := s.Get(ctx, "0000"); err != store.ErrNotFound {
			t.Fatalf("missing: %v", err)
		}
		known, err := s.Known(ctx, []string{b.SHA256, "ff", a.SHA256})
		if err != nil || !slices.Equal(known, []string{b.SHA256, a.SHA256}) {
			t.Fatalf("known %v %v", known, err)
		}
	})

	t.Run("InconsistentVerdictKept", func(t *testing.T) {
		s := open(t)
		r := archivetest.Record(archivetest.Spec{})
		r.Throughput.OutputTokens++
		rec, rj := verify.Check(archivetest.Push(r))
		if rj != nil {
			t.Fatal(rj)
		}
		if _, err := s.Put(ctx, push, []*verify.Record{rec}); err != nil {
			t.Fatal(err)
		}
		got, err := s.Get(ctx, rec.SHA256)
		if err != nil || got.Verdict != verify.Inconsistent || len(got.Checks) == 0 {
			t.Fatalf("%+v %v", got, err)
		}
		if n, _ := s.Count(ctx, store.Filter{Verdict: verify.Consistent}); n != 0 {
			t.Fatalf("consistent count %d", n)
		}
	})

	t.Run("FilterPageGroup", func(t *testing.T) {
		s := open(t)
		var recs []*verify.Record
		for i, m := range []string{"a/model", "b/model", "a/model", "b/model", "a/model"} {
			for c := 1; c <= 3; c++ {
				gpu := ""
				if i == 4 {
					gpu = "NVIDIA A100-SXM4-80GB"
				}
				recs = append(recs, Checked(t, archivetest.Spec{Model: m, BatchSize: 1 + i%2*7, Cycle: c, GPU: gpu, Salt: i*10 + c}))
			}
		}
		if _, err := s.Put(ctx, push, recs); err != nil {
			t.Fatal(err)
		}
		n, _ := s.Count(ctx, store.Filter{Model: "a/model"})
		if n != 9 {
			t.Fatalf("a/model: %d", n)
		}
		var seen []int64
		cursor := int64(0)
		for {
			rows, next, err := s.List(ctx, store.Filter{Model: "a/model"}, cursor, 4)
			if err != nil {
				t.Fatal(err)
			}
			for _, r := range rows {
				if r.Model != "a/model" {
					t.Fatalf("filter leaked %s", r.Model)
				}
				seen = append(seen, r.ID)
			}
			if next == 0 {
				break
			}
			cursor = next
		}
		if len(seen) != 9 || !slices.IsSortedFunc(seen, func(a, b int64) int { return int(b - a) }) {
			t.Fatalf("pages: %v", seen)
		}
		if n, _ := s.Count(ctx, store.Filter{GPU: "NVIDIA A100-SXM4-80GB"}); n != 3 {
			t.Fatalf("gpu filter: %d", n)
		}
		from := time.Date(2026, 11, 1, 0, 20, 0, 0, time.UTC)
		if n, _ := s.Count(ctx, store.Filter{From: from}); n != 9 {
			t.Fatalf("from filter: %d", n)
		}
		if n, _ := s.Count(ctx, store.Filter{To: from}); n != 6 {
			t.Fatalf("to filter: %d", n)
		}
		// a/model batch 1 on H100 (runs 0 and 2 are the same config), a/model
		// batch 1 on A100, b/model batch 8 on H100.
		groups, total, err := s.Configs(ctx, store.Filter{}, 0, 10)
		if err != nil || total != 3 || len(groups) != 3 {
			t.Fatalf("groups %+v total %d %v", groups, total, err)
		}
		if groups[0].Model != "a/model" || groups[0].Records+groups[1].Records != 9 || groups[2].Model != "b/model" || groups[2].Records != 6 {
			t.Fatalf("groups %+v", groups)
		}
		page, _, _ := s.Configs(ctx, store.Filter{}, 2, 10)
		if len(page) != 1 || page[0] != groups[2] {
			t.Fatalf("offset page %+v", page)
		}
		full, err := s.Records(ctx, store.Filter{}, groups[2:], 100)
		if err != nil || len(full) != 6 {
			t.Fatalf("records of a group: %d %v", len(full), err)
		}
		f, err := s.Facets(ctx)
		if err != nil || !slices.Equal(f.Models, []string{"a/model", "b/model"}) || len(f.GPUs) != 2 {
			t.Fatalf("facets %+v %v", f, err)
		}
	})

	t.Run("HostileStringsAreData", func(t *testing.T) {
		s := open(t)
		evil := `x'); DROP TABLE records; --`
		rec := Checked(t, archivetest.Spec{Model: evil, Study: `"; DELETE FROM tokens; --`})
		if _, err := s.Put(ctx, push, []*verify.Record{rec}); err != nil {
			t.Fatal(err)
		}
		if n, err := s.Count(ctx, store.Filter{Model: evil}); err != nil || n != 1 {
			t.Fatalf("count %d %v", n, err)
		}
		if n, err := s.Count(ctx, store.Filter{Model: "' OR 1=1 --"}); err != nil || n != 0 {
			t.Fatalf("injection matched %d %v", n, err)
		}
	})

	t.Run("ConcurrentPutsStoreOnce", func(t *testing.T) {
		s := open(t)
		recs := make([]*verify.Record, 40)
		for i := range recs {
			recs[i] = Checked(t, archivetest.Spec{Cycle: i + 1})
		}
		var wg sync.WaitGroup
		errs := make(chan error, 8)
		for w := range 8 {
			wg.Go(func() {
				batch := slices.Clone(recs)
				slices.Reverse(batch[:w*5])
				if _, err := s.Put(ctx, store.Push{ID: fmt.Sprint("w", w), At: time.Now()}, batch); err != nil {
					errs <- err
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
		if n, _ := s.Count(ctx, store.Filter{}); n != 40 {
			t.Fatalf("stored %d, want 40", n)
		}
	})

	t.Run("Tokens", func(t *testing.T) {
		s := open(t)
		tok, err := s.CreateToken(ctx, store.Token{Name: "lab", Scope: store.ScopeWrite, RatePerMin: 60}, "h1")
		if err != nil || tok.ID == 0 {
			t.Fatal(tok, err)
		}
		if _, err := s.CreateToken(ctx, store.Token{Name: "lab", Scope: store.ScopeRead}, "h2"); err == nil {
			t.Fatal("duplicate name accepted")
		}
		if _, err := s.CreateToken(ctx, store.Token{Name: "x", Scope: "admin"}, "h3"); err == nil {
			t.Fatal("bad scope accepted")
		}
		got, err := s.TokenByHash(ctx, "h1")
		if err != nil || got.Name != "lab" || !got.Allows(store.ScopeRead) || got.RatePerMin != 60 {
			t.Fatal(got, err)
		}
		if _, err := s.RevokeToken(ctx, "lab"); err != nil {
			t.Fatal(err)
		}
		if _, err := s.TokenByHash(ctx, "h1"); err != store.ErrNotFound {
			t.Fatalf("revoked token still live: %v", err)
		}
		list, _ := s.Tokens(ctx)
		if len(list) != 1 || list[0].RevokedAt == nil {
			t.Fatalf("list %+v", list)
		}
	})
}
