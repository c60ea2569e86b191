package main

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/llenergymeasure/llem/exporters/exportertest"
	"github.com/llenergymeasure/llem/pkg/share/sharetest"
)

// TestPushKilledMidwayResumes runs the real llem (this test binary as
// main) as a subprocess, kills it with SIGKILL while its third batch is in
// the archive, and pushes again: the second push sends only what the
// archive lacks, and every record is stored exactly once.
func TestPushKilledMidwayResumes(t *testing.T) {
	dir := t.TempDir()
	if _, _, err := exportertest.WriteStudy(dir, exportertest.Spec{Study: "kill", Runs: 5, Cycles: 4, Seed: 2}); err != nil {
		t.Fatal(err)
	}
	files, _ := filepath.Glob(filepath.Join(dir, "records", "*", "*.json"))
	for _, f := range files { // a real snapshot, with its fingerprint
		b, _ := os.ReadFile(f)
		var m map[string]any
		json.Unmarshal(b, &m)
		m["environment"] = json.RawMessage(exportertest.Environment)
		b, _ = json.MarshalIndent(m, "", "  ")
		os.WriteFile(f, b, 0o644)
	}
	reached, release := make(chan struct{}), make(chan struct{})
	srv := sharetest.New(t, sharetest.Options{Tokens: map[string]string{"kill-token": "write"}, BeforeStore: func(n int) {
		if n == 3 {
			close(reached)
			<-release
		}
	}})
	push := func() *exec.Cmd {
		exe, err := os.Executable()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(exe, "results", "push", dir, "--to", srv.URL, "--yes", "--batch", "5")
		cmd.Env = append(os.Environ(), "LLEM_TEST_EXEC_MAIN=1", "LLEM_API_KEY=kill-token",
			"LLEM_CONFIG="+filepath.Join(dir, "none.yaml"))
		return cmd
	}
	first := push()
	var out bytes.Buffer
	first.Stdout, first.Stderr = &out, &out
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	select {
	case <-reached:
	case <-time.After(2 * time.Minute):
		first.Process.Kill()
		t.Fatalf("the push never reached its third batch:\n%s", out.String())
	}
	if err := first.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := first.Wait()
	if ws, ok := first.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGKILL {
		t.Fatalf("first push was not killed: %v\n%s", err, out.String())
	}
	close(release) // the archive finishes the request the dead client sent
	deadline := time.Now().Add(time.Minute)
	for srv.Stored() < 15 {
		if time.Now().After(deadline) {
			t.Fatalf("the archive stored %d records, want the first 3 batches (15)", srv.Stored())
		}
		time.Sleep(10 * time.Millisecond)
	}
	second := push()
	got, err := second.CombinedOutput()
	if err != nil {
		t.Fatalf("re-push: %v\n%s", err, got)
	}
	if !strings.Contains(string(got), "accepted: 20 record(s) (5 new, 15 already stored)") {
		t.Fatalf("re-push output:\n%s", got)
	}
	if srv.Stored() != 20 || srv.Duplicates() != 0 || srv.PushRequests() != 4 {
		t.Fatalf("stored %d, duplicates received %d, push requests %d; want 20, 0, 4", srv.Stored(), srv.Duplicates(), srv.PushRequests())
	}
}
