package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/pkg/archive/archivetest"
	"github.com/llenergymeasure/llem/pkg/archive/store"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
)

// startArchive runs `llem archive serve` as a real subprocess (this test
// binary standing in for llem, see TestMain) and returns its base URL.
func startArchive(t *testing.T, db string) (*exec.Cmd, string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "archive", "serve", "--db", db, "--listen", "127.0.0.1:0")
	cmd.Env = append(os.Environ(), "LLEM_CMD_TEST_AS_LLEM=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := regexp.MustCompile(`serving (http://[0-9.:]+)`)
	sc := bufio.NewScanner(stderr)
	for sc.Scan() {
		if m := addr.FindStringSubmatch(sc.Text()); m != nil {
			go func() { // keep draining the access log
				for sc.Scan() {
				}
			}()
			return cmd, m[1]
		}
	}
	t.Fatalf("llem archive serve exited before serving: %v", sc.Err())
	return nil, ""
}

// TestArchiveKill9MidPush kills the archive server (SIGKILL) while eight
// clients push. Afterwards every batch the server acknowledged is stored,
// every other batch is stored whole or not at all (one transaction each),
// the SQLite file is intact, and pushing everything again on a restarted
// server completes with each record stored exactly once.
func TestArchiveKill9MidPush(t *testing.T) {
	dir := t.TempDir()
	db := filepath.Join(dir, "archive.db")
	var out, errb bytes.Buffer
	if c := Main(t.Context(), []string{"archive", "token", "create", "pusher", "--scope", "write", "--rate", "0", "--db", db}, IO{Stdout: &out, Stderr: &errb}); c != 0 {
		t.Fatalf("token create: %d %s", c, errb.String())
	}
	token := strings.TrimSpace(out.String())

	var batches [][]wire.PushedRecord
	for b := range 60 {
		var batch []wire.PushedRecord
		for i := range 10 {
			batch = append(batch, archivetest.Push(archivetest.Record(archivetest.Spec{Salt: b*10 + i, Cycle: i + 1, BatchSize: 1})))
		}
		batches = append(batches, batch)
	}
	push := func(url string, i int) (int, error) {
		req, _ := http.NewRequest("POST", url+wire.PushPath, bytes.NewReader(mustMarshal(t, archivetest.Request(fmt.Sprint("k", i), batches[i]...))))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err
		}
		defer resp.Body.Close()
		return resp.StatusCode, nil
	}

	cmd, url := startArchive(t, db)
	var acked sync.Map
	var nAcked, next atomic.Int64
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(batches) {
					return
				}
				if code, err := push(url, i); err != nil {
					return // the server is gone
				} else if code == 200 {
					acked.Store(i, true)
					nAcked.Add(1)
				}
			}
		})
	}
	for deadline := time.Now().Add(60 * time.Second); nAcked.Load() < 5 && time.Now().Before(deadline); {
		time.Sleep(time.Millisecond)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL
		t.Fatal(err)
	}
	wg.Wait()
	cmd.Wait()
	t.Logf("killed after %d acknowledged batches of %d", nAcked.Load(), len(batches))

	st, err := store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	whole, none := 0, 0
	for i, b := range batches {
		var hashes []string
		for _, p := range b {
			hashes = append(hashes, p.SHA256)
		}
		known, err := st.Known(context.Background(), hashes)
		if err != nil {
			t.Fatal(err)
		}
		_, ok := acked.Load(i)
		switch {
		case len(known) == len(b):
			whole++
		case len(known) == 0 && !ok:
			none++
		default:
			t.Fatalf("batch %d (acknowledged %v): %d of %d records stored", i, ok, len(known), len(b))
		}
	}
	st.Close()
	t.Logf("after kill -9: %d batches whole, %d absent", whole, none)

	_, url = startArchive(t, db)
	for i := range batches {
		if code, err := push(url, i); err != nil || code != 200 {
			t.Fatalf("re-push %d: %d %v", i, code, err)
		}
	}
	st, err = store.Open(context.Background(), db)
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	if n, err := st.Count(context.Background(), store.Filter{}); err != nil || n != 600 {
		t.Fatalf("after re-push: %d records (%v), want 600", n, err)
	}
	if res, err := sqlIntegrity(db); err != nil || res != "ok" {
		t.Fatalf("integrity_check: %s %v", res, err)
	}
}

func mustMarshal(t *testing.T, v any) []byte {
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// sqlIntegrity runs SQLite's integrity check on the file.
func sqlIntegrity(path string) (string, error) {
	db, err := sql.Open("sqlite", "file:"+path+"?mode=ro")
	if err != nil {
		return "", err
	}
	defer db.Close()
	var res string
	err = db.QueryRow(`PRAGMA integrity_check`).Scan(&res)
	return res, err
}
