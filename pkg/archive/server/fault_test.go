package server_test

import (
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/llenergymeasure/llem/internal/pgtest"
	"github.com/llenergymeasure/llem/pkg/archive/archivetest"
	"github.com/llenergymeasure/llem/pkg/archive/server"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
)

// batches splits n generated records into pushes of size each.
func batches(n, size int, s archivetest.Spec) [][]wire.PushedRecord {
	var out [][]wire.PushedRecord
	var cur []wire.PushedRecord
	for i := range n {
		s.Salt = i
		s.Cycle = i%10 + 1
		cur = append(cur, archivetest.Push(archivetest.Record(s)))
		if len(cur) == size {
			out = append(out, cur)
			cur = nil
		}
	}
	if len(cur) > 0 {
		out = append(out, cur)
	}
	return out
}

// checkStoredExactly fails unless every record of recs is stored once and
// intact (its stored bytes hash to its sha256) and nothing else is.
func checkStoredExactly(t *testing.T, a *archive, recs [][]wire.PushedRecord) {
	t.Helper()
	ctx := context.Background()
	n := 0
	for _, b := range recs {
		for _, p := range b {
			n++
			st, err := a.Store.Get(ctx, p.SHA256)
			if err != nil {
				t.Fatalf("record %s: %v", p.SHA256, err)
			}
			if h, _ := wire.RecordHash(st.Record); h != p.SHA256 {
				t.Fatalf("record %s stored damaged", p.SHA256)
			}
		}
	}
	if c := a.count(t); c != n {
		t.Fatalf("%d records stored, want %d (lost or duplicated)", c, n)
	}
}

// pushUntilStored pushes a batch, retrying 503s (database restarting) with
// a deadline, as llem results push does.
func pushUntilStored(t *testing.T, a *archive, id string, batch []wire.PushedRecord) int {
	body := mustJSON(t, archivetest.Request(id, batch...))
	retries := 0
	for deadline := time.Now().Add(90 * time.Second); time.Now().Before(deadline); retries++ {
		req, _ := http.NewRequest("POST", a.URL+wire.PushPath, strings.NewReader(string(body)))
		req.Header.Set("Authorization", "Bearer "+a.Write)
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			var pr wire.PushResponse
			json.NewDecoder(resp.Body).Decode(&pr)
			resp.Body.Close()
			if resp.StatusCode == 200 && len(pr.Accepted) == len(batch) {
				return retries
			}
			if resp.StatusCode != 503 {
				t.Errorf("push %s: status %d", id, resp.StatusCode)
				return retries
			}
		}
		time.Sleep(20 * time.Millisecond) // poll: the database is restarting
	}
	t.Errorf("push %s: not stored within the deadline", id)
	return retries
}

// TestPostgresRestartMidPush restarts a real PostgreSQL (immediate stop:
// crash recovery) while 8 clients push: every batch is stored whole or
// refused with 503, the retried pushes complete, and the archive ends with
// every record exactly once.
func TestPostgresRestartMidPush(t *testing.T) {
	if testing.Short() {
		t.Skip("fault test (-short)")
	}
	pg := pgtest.Start(t)
	a := newArchive(t, pg.NewDatabase(t), server.Options{})
	recs := batches(400, 10, archivetest.Spec{})
	var next, done atomic.Int64
	var retried atomic.Int64
	var wg sync.WaitGroup
	for w := range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(recs) {
					return
				}
				retried.Add(int64(pushUntilStored(t, a, fmt.Sprintf("w%d-b%d", w, i), recs[i])))
				done.Add(1)
			}
		})
	}
	for deadline := time.Now().Add(60 * time.Second); done.Load() < 10 && time.Now().Before(deadline); {
		time.Sleep(5 * time.Millisecond)
	}
	t0 := time.Now()
	if err := pg.Kill(); err != nil {
		t.Fatal(err)
	}
	if err := pg.Start(); err != nil {
		t.Fatal(err)
	}
	t.Logf("PostgreSQL down and up again in %v", time.Since(t0))
	wg.Wait()
	t.Logf("%d batches pushed, %d retries across the restart", done.Load(), retried.Load())
	checkStoredExactly(t, a, recs)
}

// TestDiskFull runs the archive's SQLite database on a real tmpfs that
// fills up: pushes then fail with 507 (or 503) and store nothing partial;
// the database stays intact; once space is freed, pushing everything again
// completes with every record stored once.
func TestDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		if os.Getenv("CI") != "" {
			t.Fatal("TestDiskFull needs root to mount a tmpfs, and CI runs as root")
		}
		t.Skip("needs root (mounts a tmpfs)")
	}
	mnt := filepath.Join(t.TempDir(), "disk")
	os.Mkdir(mnt, 0o755)
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", mnt).CombinedOutput(); err != nil {
		t.Fatalf("mount tmpfs: %v: %s", err, out)
	}
	t.Cleanup(func() { exec.Command("umount", "-l", mnt).Run() })
	dbPath := filepath.Join(mnt, "archive.db")
	a := newArchive(t, dbPath, server.Options{})
	recs := batches(200, 10, archivetest.Spec{})
	fillTo(t, mnt, 320<<10)
	statuses := map[int]int{}
	var accepted [][]wire.PushedRecord
	for i, b := range recs {
		r := a.do(t, "POST", wire.PushPath, a.Write, mustJSON(t, archivetest.Request(fmt.Sprint("full-", i), b...)))
		statuses[r.Status]++
		switch r.Status {
		case 200:
			accepted = append(accepted, b)
		case 503, 507:
			var e wire.ErrorResponse
			json.Unmarshal(r.Body, &e)
			if e.Reason == "" {
				t.Fatalf("%d without a reason", r.Status)
			}
		default:
			t.Fatalf("push on a full disk: %d %s", r.Status, r.Body)
		}
	}
	t.Logf("on a full disk: %v", statuses)
	if statuses[507]+statuses[503] == 0 {
		t.Fatal("the disk never filled: the test proved nothing")
	}
	// What was accepted is stored whole; nothing else is.
	checkStoredExactly(t, a, accepted)
	if res := integrity(t, dbPath); res != "ok" {
		t.Fatalf("integrity_check: %s", res)
	}
	if err := os.Remove(filepath.Join(mnt, "filler")); err != nil {
		t.Fatal(err)
	}
	for i, b := range recs {
		if r := a.do(t, "POST", wire.PushPath, a.Write, mustJSON(t, archivetest.Request(fmt.Sprint("again-", i), b...))); r.Status != 200 {
			t.Fatalf("re-push after freeing space: %d %s", r.Status, r.Body)
		}
	}
	checkStoredExactly(t, a, recs)
}

// fillTo leaves about free bytes available on the file system at mnt.
func fillTo(t *testing.T, mnt string, free int64) {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(mnt, &st); err != nil {
		t.Fatal(err)
	}
	avail := int64(st.Bavail) * int64(st.Bsize) // Bsize: int64 on Linux, uint32 on macOS
	if avail <= free {
		return
	}
	if err := os.WriteFile(filepath.Join(mnt, "filler"), make([]byte, avail-free), 0o644); err != nil {
		t.Fatalf("fill: %v", err)
	}
}

func integrity(t *testing.T, path string) string {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	var res string
	if err := db.QueryRow(`PRAGMA integrity_check`).Scan(&res); err != nil {
		t.Fatal(err)
	}
	return res
}
