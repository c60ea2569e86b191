package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
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

// llemProc runs this test binary as llem (main) with args.
func llemProc(t *testing.T, env []string, args ...string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, args...)
	cmd.Env = append(append(os.Environ(), "LLEM_TEST_EXEC_MAIN=1"), env...)
	return cmd
}

// TestPushToRealArchive pushes a study that llem eval measured to the real
// `llem archive serve` (SQLite), started as a subprocess: a push killed
// with SIGKILL mid-way is completed by the next one, a further push stores
// nothing twice, the archive lists each record once, a record without its
// fingerprint is refused to a read-only token (403) and rejected with the
// archive's reason for a write token, and the token never appears in the
// output.
func TestPushToRealArchive(t *testing.T) {
	dir := t.TempDir()
	noConfig := "LLEM_CONFIG=" + filepath.Join(dir, "none.yaml")
	t.Setenv("LLEM_CONFIG", filepath.Join(dir, "none.yaml"))
	t.Setenv("LLEM_CACHE_DIR", filepath.Join(dir, "cache"))
	study := filepath.Join(dir, "study.cue")
	os.WriteFile(study, []byte(`name: "pushed"
base: {
	model: "random:llama-15m", backend: "native", precision: "fp32", n: 2
	dataset: {source: "synthetic", input_len: 8, output_len: 2}
	max_output_tokens: 2
	energy: sensor: "estimate"
	baseline: enabled: false
	warmup: {n_warmup: 1, thermal_floor_seconds: 0}
}
execution: {cycles: 6, order: "sequential"}
`), 0o644)
	var evalOut bytes.Buffer
	if code := Main(t.Context(), []string{"eval", study, "--out", filepath.Join(dir, "results"), "--quiet"}, IO{Stdin: strings.NewReader(""), Stdout: &evalOut, Stderr: &evalOut}); code != 0 {
		t.Fatalf("eval: exit %d\n%s", code, evalOut.String())
	}
	studies, _ := filepath.Glob(filepath.Join(dir, "results", "pushed-*"))
	if len(studies) != 1 {
		t.Fatalf("study directories: %v", studies)
	}
	st := studies[0]
	db := filepath.Join(dir, "archive.db")
	token := func(name, scope string) string {
		out, err := llemProc(t, []string{noConfig}, "archive", "token", "create", name, "--scope", scope, "--db", db).Output()
		if err != nil {
			t.Fatalf("token create: %v", err)
		}
		return strings.TrimSpace(string(out))
	}
	writeTok, readTok := token("pusher", "write"), token("reader", "read")

	srv := llemProc(t, []string{noConfig}, "archive", "serve", "--db", db, "--listen", "127.0.0.1:0")
	stderr, _ := srv.StderrPipe()
	if err := srv.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { srv.Process.Signal(syscall.SIGTERM); srv.Wait() })
	addr := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			if _, rest, ok := strings.Cut(sc.Text(), "serving "); ok {
				addr <- strings.Fields(rest)[0]
			}
		}
	}()
	var url string
	select {
	case url = <-addr:
	case <-time.After(time.Minute):
		t.Fatal("llem archive serve did not say where it serves")
	}
	push := func(tok string, args ...string) (string, int) {
		cmd := llemProc(t, []string{noConfig, "LLEM_API_KEY=" + tok}, append([]string{"results", "push"}, args...)...)
		out, err := cmd.CombinedOutput()
		if strings.Contains(string(out), tok) {
			t.Fatalf("the token is in the output:\n%s", out)
		}
		code := 0
		if err != nil {
			code = cmd.ProcessState.ExitCode()
		}
		return string(out), code
	}
	// A push killed with SIGKILL after its second batch was acknowledged.
	first := llemProc(t, []string{noConfig, "LLEM_API_KEY=" + writeTok}, "results", "push", st, "--to", url, "--yes", "--batch", "1")
	progress, _ := first.StderrPipe()
	if err := first.Start(); err != nil {
		t.Fatal(err)
	}
	sc := bufio.NewScanner(progress)
	for sc.Scan() && sc.Text() != "llem: pushed 2/6 records" {
	}
	first.Process.Signal(syscall.SIGKILL)
	first.Wait()
	if ws, ok := first.ProcessState.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() {
		t.Fatalf("the first push ended before it was killed: %v", first.ProcessState)
	}
	out, code := push(writeTok, st, "--to", url, "--yes")
	var fresh, stored int
	if _, rest, ok := strings.Cut(out, "accepted: 6 record(s) ("); ok {
		fmt.Sscanf(rest, "%d new, %d already stored", &fresh, &stored)
	}
	if code != 0 || stored < 2 || fresh+stored != 6 {
		t.Fatalf("re-push after the kill (exit %d; %d new, %d stored):\n%s", code, fresh, stored, out)
	}
	out, code = push(writeTok, st, "--to", url, "--yes")
	if code != 0 || !strings.Contains(out, "accepted: 6 record(s) (0 new, 6 already stored)") {
		t.Fatalf("third push (exit %d):\n%s", code, out)
	}
	// What the archive holds: each record once.
	req, _ := http.NewRequest(http.MethodGet, url+"/api/v1/records", nil)
	req.Header.Set("Authorization", "Bearer "+readTok)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	var list struct {
		Records []json.RawMessage `json:"records"`
	}
	json.NewDecoder(resp.Body).Decode(&list)
	resp.Body.Close()
	if len(list.Records) != 6 {
		t.Fatalf("the archive lists %d records, want 6", len(list.Records))
	}
	// A record whose fingerprint was blanked: rejected, reported, exit 1.
	files, _ := filepath.Glob(filepath.Join(st, "records", "*", "cycle-1.json"))
	b, _ := os.ReadFile(files[0])
	var rec map[string]any
	json.Unmarshal(b, &rec)
	rec["environment"].(map[string]any)["fingerprint"] = ""
	b, _ = json.MarshalIndent(rec, "", "  ")
	os.WriteFile(files[0], b, 0o644)
	// A read-only token may ask what is stored but not push what is not.
	if out, code = push(readTok, st, "--to", url, "--yes"); code != 1 || !strings.Contains(out, "403") {
		t.Fatalf("read-only token (exit %d):\n%s", code, out)
	}
	out, code = push(writeTok, st, "--to", url, "--yes")
	if code != 1 || !strings.Contains(out, "rejected: 1 record(s)") || !strings.Contains(out, "cycle-1.json: missing_provenance: ") {
		t.Fatalf("push with a forged record (exit %d):\n%s", code, out)
	}
}

// TestAskYes is the terminal side of the confirmation: only y or yes
// (any case) pushes; anything else, or no answer, does not.
func TestAskYes(t *testing.T) {
	for in, want := range map[string]bool{"y\n": true, "YES\n": true, " yes \n": true, "n\n": false, "\n": false, "": false, "yep\n": false, "y": true} {
		var prompt bytes.Buffer
		got, err := askYes(strings.NewReader(in), &prompt, "Push 2 record(s) to https://a.example?")
		if err != nil || got != want {
			t.Errorf("%q: %v, %v; want %v", in, got, err, want)
		}
		if prompt.String() != "Push 2 record(s) to https://a.example? [y/N] " {
			t.Errorf("prompt %q", prompt.String())
		}
	}
}
