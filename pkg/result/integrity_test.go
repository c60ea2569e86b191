package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

// newStudy makes a locked study of n pending run×cycle entries (one run per
// entry, cycle 1) whose records the caller writes with finishEntry.
func newStudy(t *testing.T, n int) *Store {
	t.Helper()
	m := Manifest{Study: "s", StudyHash: "h1", Status: StudyRunning}
	for pos := range n {
		m.Entries = append(m.Entries, Entry{RunID: "run" + string(rune('a'+pos)), Cycle: 1, Position: pos, Status: EntryPending})
	}
	s, err := CreateAt(t.TempDir(), m)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func finishEntry(t *testing.T, s *Store, pos int) {
	t.Helper()
	e := s.Entry(pos)
	r := sampleRecord()
	r.StudyHash, r.RunID, r.Cycle, r.Position, r.Status, r.Error = "h1", e.RunID, e.Cycle, pos, StatusOK, nil
	rel, err := s.WriteRecord(&r)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.UpdateEntry(pos, func(e *Entry) { e.Status, e.Record = EntryDone, rel }); err != nil {
		t.Fatal(err)
	}
}

func TestJournalIsReadWithoutFolding(t *testing.T) {
	t.Parallel()
	s := newStudy(t, 3)
	finishEntry(t, s, 1)
	if _, err := os.Stat(filepath.Join(s.Dir, JournalFile)); err != nil {
		t.Fatalf("a per-slot transition did not go to the journal: %v", err)
	}
	snap, _ := os.ReadFile(filepath.Join(s.Dir, ManifestFile))
	m, err := ReadManifest(s.Dir)
	if err != nil {
		t.Fatal(err)
	}
	if m.Entries[1].Status != EntryDone || m.Counts.Done != 1 || m.Counts.Pending != 2 {
		t.Fatalf("reader's manifest = %+v", m.Counts)
	}
	if after, _ := os.ReadFile(filepath.Join(s.Dir, ManifestFile)); string(after) != string(snap) {
		t.Fatal("ReadManifest rewrote manifest.json")
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(s.Dir, JournalFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Close left the journal: %v", err)
	}
	if m2, _ := ReadManifest(s.Dir); m2.Counts != m.Counts {
		t.Fatalf("after folding: %+v, before: %+v", m2.Counts, m.Counts)
	}
}

func TestTornJournalLineIsIgnoredAndFoldedAway(t *testing.T) {
	t.Parallel()
	s := newStudy(t, 2)
	finishEntry(t, s, 0)
	dir := s.Dir
	s.lock.release() // as if killed: no Close, no fold
	s.journal.close()
	f, _ := os.OpenFile(filepath.Join(dir, JournalFile), os.O_WRONLY|os.O_APPEND, 0)
	f.WriteString(`{"pos":1,"entry":{"run_id":"runb","sta`)
	f.Close()
	m, err := ReadManifest(dir)
	if err != nil || m.Counts.Done != 1 || m.Entries[1].Status != EntryPending {
		t.Fatalf("torn last line: %+v, %v", m.Counts, err)
	}
	o, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := os.Stat(filepath.Join(dir, JournalFile)); !errors.Is(err, os.ErrNotExist) {
		t.Fatal("Open did not fold the journal (the torn fragment would glue onto the next line)")
	}
	// A bad line that is not the last is corruption, reported as such.
	os.WriteFile(filepath.Join(dir, JournalFile), []byte("garbage\n{\"pos\":0}\n"), 0o644)
	if _, err := ReadManifest(dir); !errors.As(err, new(*ManifestError)) {
		t.Fatalf("corrupt journal: %v", err)
	}
}

func TestReadersNeverWrite(t *testing.T) {
	t.Parallel()
	s := newStudy(t, 2)
	finishEntry(t, s, 0)
	// An in-flight temp file of the writer must survive any reader.
	tmp := filepath.Join(s.Dir, RecordsDir, ".cycle-1.json.tmp-123")
	os.MkdirAll(filepath.Dir(tmp), 0o755)
	os.WriteFile(tmp, []byte("{"), 0o644)
	before := snapshotTree(t, s.Dir)
	if _, err := ReadManifest(s.Dir); err != nil {
		t.Fatal(err)
	}
	if _, _, err := StudyRecords(s.Dir, s.Manifest()); err != nil {
		t.Fatal(err)
	}
	if held, h, err := LockState(s.Dir); err != nil || !held || h.PID != os.Getpid() {
		t.Fatalf("LockState = %v %+v %v", held, h, err)
	}
	if after := snapshotTree(t, s.Dir); after != before {
		t.Fatalf("a reader changed the directory:\nbefore %s\nafter  %s", before, after)
	}
	// A second writer is refused and deletes nothing either.
	if _, err := Open(s.Dir); !errors.As(err, new(*LockedError)) {
		t.Fatalf("second writer: %v", err)
	}
	if _, err := os.Stat(tmp); err != nil {
		t.Fatal("the refused writer removed the first writer's temp file")
	}
}

func snapshotTree(t *testing.T, dir string) string {
	t.Helper()
	var b strings.Builder
	filepath.Walk(dir, func(p string, fi os.FileInfo, err error) error {
		if err == nil && !fi.IsDir() {
			fmt.Fprintf(&b, "%s:%s:%d\n", p, fi.ModTime(), fi.Size())
		}
		return nil
	})
	return b.String()
}

func TestLockHeldByAnotherProcess(t *testing.T) {
	t.Parallel()
	s := newStudy(t, 1)
	dir := s.Dir
	s.Close()
	// Hold the lock from another process through llem's own code: this test
	// binary re-run as a helper that opens the study and waits.
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperHoldLock$")
	cmd.Env = append(os.Environ(), "LLEM_TEST_HOLD_LOCK="+dir)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	buf := make([]byte, 6)
	if _, err := stdout.Read(buf); err != nil || string(buf[:5]) != "held\n"[:5] {
		t.Fatalf("helper: %q %v", buf, err)
	}
	_, err := Open(dir)
	var le *LockedError
	if !errors.As(err, &le) || le.Holder.PID != cmd.Process.Pid || !strings.Contains(err.Error(), "pid") {
		t.Fatalf("Open while another process holds the lock: %v", err)
	}
	held, h, err := LockState(dir)
	if !held || h.PID != cmd.Process.Pid || err != nil {
		t.Fatalf("LockState = %v %+v %v", held, h, err)
	}
	// kill -9 releases it: the kernel drops the lock with the process.
	cmd.Process.Kill()
	cmd.Wait()
	if held, _, _ := LockState(dir); held {
		t.Fatal("lock still held after the holder died")
	}
	o, err := Open(dir)
	if err != nil {
		t.Fatalf("Open after the holder died: %v", err)
	}
	o.Close()
}

func TestHelperHoldLock(t *testing.T) {
	dir := os.Getenv("LLEM_TEST_HOLD_LOCK")
	if dir == "" {
		t.Skip("helper process for TestLockHeldByAnotherProcess")
	}
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	os.Stdout.WriteString("held\n")
	time.Sleep(time.Minute) // killed by the parent
	s.Close()
}

func TestStudyRecordsRejectsForeignAndBrokenRecords(t *testing.T) {
	t.Parallel()
	s := newStudy(t, 5)
	for pos := range 5 {
		finishEntry(t, s, pos)
	}
	dir := s.Dir
	rec := func(pos int) string { return filepath.Join(dir, filepath.FromSlash(s.Entry(pos).Record)) }
	os.Remove(rec(0))                                                                                              // missing
	os.WriteFile(rec(1), []byte("null"), 0o644)                                                                    // null is no record
	b, _ := os.ReadFile(rec(3))                                                                                    // another run's record at entry 2's path
	os.WriteFile(rec(2), b, 0o644)                                                                                 //
	os.WriteFile(rec(4), []byte(strings.Replace(string(b), `"study_hash": "h1"`, `"study_hash": "h2"`, 1)), 0o644) // another study's design
	os.MkdirAll(filepath.Join(dir, RecordsDir, "other"), 0o755)
	os.WriteFile(filepath.Join(dir, RecordsDir, "other", "cycle-1.json"), b, 0o644) // stray
	recs, probs, err := StudyRecords(dir, s.Manifest())
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 1 || recs[0].Position != 3 {
		t.Fatalf("verified records = %d, want only position 3", len(recs))
	}
	kinds := map[string]int{}
	for _, p := range probs {
		kinds[p.Kind]++
	}
	if kinds[RecordMissing] != 1 || kinds[RecordCorrupt] != 1 || kinds[RecordForeign] != 2 || kinds[RecordStray] != 1 {
		t.Fatalf("problems = %v", probs)
	}
	// Repair sends the bad entries back to pending and keeps the bad files.
	found, err := s.Repair()
	if err != nil || len(found) != 4 {
		t.Fatalf("Repair = %v, %v", found, err)
	}
	if c := s.Counts(); c.Done != 1 || c.Pending != 4 {
		t.Fatalf("after Repair: %+v", c)
	}
	if kept, _ := filepath.Glob(rec(3) + "*"); len(kept) != 1 {
		t.Fatalf("the good record was touched: %v", kept)
	}
	if aside, _ := filepath.Glob(filepath.Join(dir, RecordsDir, "*", "*.bad-*")); len(aside) != 3 {
		t.Fatalf("bad files moved aside = %v, want 3", aside)
	}
}

func TestCreateIsAtomicAndNamesAreBounded(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	// A Create killed before its rename leaves only a hidden directory,
	// which the next Create removes.
	os.MkdirAll(filepath.Join(root, creatingPrefix+"x", "records"), 0o755)
	s, err := Create(root, Manifest{Study: strings.Repeat("long name ", 500)}, time.Now(), map[string]int{"runs": 1})
	if err != nil {
		t.Fatalf("Create with a 5000-character study name: %v", err)
	}
	defer s.Close()
	if len(filepath.Base(s.Dir)) > 255 {
		t.Fatalf("directory name of %d bytes", len(filepath.Base(s.Dir)))
	}
	for _, f := range []string{ManifestFile, PlanFile} {
		if _, err := os.Stat(filepath.Join(s.Dir, f)); err != nil {
			t.Fatalf("new study lacks %s: %v", f, err)
		}
	}
	left, _ := filepath.Glob(filepath.Join(root, creatingPrefix+"*"))
	if len(left) != 0 {
		t.Fatalf("creating directories left: %v", left)
	}
}

func TestManifestEncodingRoundTrips(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 3, 1, 2, 3, 0, time.UTC)
	for _, n := range []int{0, 1, 3} {
		m := Manifest{SchemaVersion: SchemaVersion, Study: "s <&>", StudyHash: "h", Status: StudyRunning, StartedAt: now}
		for i := range n {
			m.Entries = append(m.Entries, Entry{RunID: fmt.Sprint("r", i), Cycle: i + 1, Position: i, Label: "a / <b>", Status: EntryDone, StartedAt: &now})
		}
		m.Recount()
		b, err := encodeManifest(&m)
		if err != nil {
			t.Fatal(err)
		}
		var back Manifest
		if err := json.Unmarshal(b, &back); err != nil {
			t.Fatalf("%d entries: %v\n%s", n, err, b)
		}
		if n == 0 {
			back.Entries = m.Entries
		}
		if !reflect.DeepEqual(back, m) {
			t.Fatalf("%d entries: round trip\n%+v\n%+v", n, back, m)
		}
		if strings.Count(string(b), "\n    {\"run_id\"") != n || !strings.Contains(string(b), "\n  \"study\": ") {
			t.Errorf("%d entries: want the header indented and one line per entry:\n%s", n, b)
		}
	}
}
