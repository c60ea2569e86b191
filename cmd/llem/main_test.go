package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/apache/arrow-go/v18/arrow/memory"
	"github.com/apache/arrow-go/v18/parquet/file"
	"github.com/apache/arrow-go/v18/parquet/pqarrow"
	"github.com/rogpeppe/go-internal/testscript"

	"github.com/llenergymeasure/llem/pkg/hub/hubtest"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/share/sharetest"
)

// TestMain lets this test binary stand in for llem: as `llem` inside the
// scripts of TestScripts (testscript puts a link named llem on their PATH),
// and as `<executable> worker` (or serve, serving-worker, slurm-task, …)
// when an eval under test starts the native backend's worker, a server
// for lm-eval, or a Slurm task (os.Executable is the test binary itself).
func TestMain(m *testing.M) {
	if os.Getenv("LLEM_TEST_EXEC_MAIN") == "1" { // a test runs this binary as llem itself
		main()
	}
	if len(os.Args) > 1 && (os.Args[1] == "worker" || os.Args[1] == "slurm-task" || os.Args[1] == "slurm" || os.Args[1] == "archive" || os.Args[1] == "serve" || os.Args[1] == "serving-worker") && os.Getenv("LLEM_CMD_TEST_AS_LLEM") == "1" {
		os.Exit(Main(context.Background(), os.Args[1:], IO{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}))
	}
	os.Setenv("LLEM_CMD_TEST_AS_LLEM", "1")
	testscript.Main(m, map[string]func(){"llem": main})
}

// TestScripts runs testdata/script/*.txtar: one script per user-visible
// behaviour of the CLI, with its expected output. Set LLEM_UPDATE_SCRIPTS=1
// to rewrite the expected files of cmp from the actual output.
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:           filepath.Join("testdata", "script"),
		UpdateScripts: os.Getenv("LLEM_UPDATE_SCRIPTS") == "1",
		Setup: func(env *testscript.Env) error {
			// A clean llem: no user config, caches and results inside $WORK,
			// and this binary as the native worker.
			env.Setenv("LLEM_CMD_TEST_AS_LLEM", "1")
			env.Setenv("LLEM_CONFIG", filepath.Join(env.WorkDir, "no-user-config.yaml"))
			env.Setenv("LLEM_CACHE_DIR", filepath.Join(env.WorkDir, ".cache"))
			env.Setenv("XDG_CONFIG_HOME", filepath.Join(env.WorkDir, ".config"))
			// $REPO lets scripts use the repository's example studies.
			repo, err := filepath.Abs(filepath.Join("..", ".."))
			if err != nil {
				return err
			}
			env.Setenv("REPO", repo)
			// $LLEM_BIN holds only the llem link, for scripts that empty PATH
			// (testscript.Main put it first on this process's PATH).
			env.Setenv("LLEM_BIN", filepath.SplitList(os.Getenv("PATH"))[0])
			env.Values[archiveKey{}] = &archiveHolder{}
			return nil
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode":        exitCode,
			"parquet-count":   parquetCount,
			"studydir":        studyDir,
			"archive-standin": archiveStandin,
			"hub-standin":     hubStandin,
		},
	})
}

// exitCode is the script command `exitcode N prog args...`: it runs prog
// like exec (so stdout and stderr can be checked after it) and fails unless
// prog exits with status N. `! exec` only tells zero from non-zero; llem's
// status says whether the input (2) or the run (1) was at fault.
func exitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode (give the expected status instead)")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N prog [args...]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: status %q is not a number", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			ts.Fatalf("exitcode: %v", err)
		}
		got = exit.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

// parquetCount is the script command `parquet-count FILE COLUMN...`: it
// prints the file's row count and, per column, how many values are not
// null ("rows 4", "co2_g 4"), so scripts can check what an export holds.
func parquetCount(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) < 1 {
		ts.Fatalf("usage: parquet-count FILE [COLUMN...]")
	}
	f, err := file.OpenParquetFile(ts.MkAbs(args[0]), false)
	if err != nil {
		ts.Fatalf("parquet-count: %v", err)
	}
	defer f.Close()
	fr, err := pqarrow.NewFileReader(f, pqarrow.ArrowReadProperties{}, memory.DefaultAllocator)
	if err != nil {
		ts.Fatalf("parquet-count: %v", err)
	}
	tbl, err := fr.ReadTable(context.Background())
	if err != nil {
		ts.Fatalf("parquet-count: %v", err)
	}
	defer tbl.Release()
	fmt.Fprintf(ts.Stdout(), "rows %d\n", tbl.NumRows())
	for _, name := range args[1:] {
		idx := tbl.Schema().FieldIndices(name)
		if len(idx) != 1 {
			ts.Fatalf("parquet-count: no column %q", name)
		}
		col := tbl.Column(idx[0])
		fmt.Fprintf(ts.Stdout(), "%s %d\n", name, col.Len()-col.NullN())
	}
}

// studyDir is the script command `studydir ROOT`: it sets $STUDY to the one
// study directory llem eval made under ROOT (its name holds a timestamp),
// as an absolute path like the ones llem prints.
func studyDir(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 1 {
		ts.Fatalf("usage: studydir ROOT")
	}
	list, err := result.ListStudies(ts.MkAbs(args[0]))
	if err != nil {
		ts.Fatalf("studydir: %v", err)
	}
	if len(list) != 1 {
		ts.Fatalf("studydir: %d studies under %s, want 1", len(list), args[0])
	}
	ts.Setenv("STUDY", list[0].Dir)
}

// archiveStandin is the script command `archive-standin TOKEN SCOPE`: it
// starts the stand-in archive of pkg/share/sharetest (the wire contract,
// strictly; until the real llem archive serve is merged) with one token,
// sets $ARCHIVE to its URL, and `archive-standin stored N` checks how many
// distinct records it holds.
func archiveStandin(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 2 {
		ts.Fatalf("usage: archive-standin TOKEN SCOPE | archive-standin stored N")
	}
	if args[0] == "stored" {
		srv := ts.Value(archiveKey{}).(*archiveHolder).srv
		if srv == nil {
			ts.Fatalf("archive-standin stored: no archive started")
		}
		if got := strconv.Itoa(srv.Stored()); got != args[1] {
			ts.Fatalf("the archive holds %s records, want %s", got, args[1])
		}
		return
	}
	srv := sharetest.NewUnstarted(sharetest.Options{Tokens: map[string]string{args[0]: args[1]}})
	srv.Start()
	ts.Defer(srv.Close)
	ts.Value(archiveKey{}).(*archiveHolder).srv = srv
	ts.Setenv("ARCHIVE", srv.URL)
}

type archiveKey struct{}

// archiveHolder carries a script's stand-in archive between its commands.
type archiveHolder struct {
	srv *sharetest.Server
	hub *hubtest.Server
}

// hubStandin is the script command `hub-standin TOKEN SCOPE`: it starts the
// Hub stand-in of pkg/hub/hubtest with one token and points HF_ENDPOINT at
// it; `hub-standin file OWNER/NAME PATH` prints a file of the dataset's
// current commit and `hub-standin commits N` checks the commit count.
func hubStandin(ts *testscript.TestScript, neg bool, args []string) {
	h := ts.Value(archiveKey{}).(*archiveHolder)
	switch {
	case !neg && len(args) == 2 && args[0] == "commits":
		if h.hub == nil || strconv.Itoa(h.hub.Commits()) != args[1] {
			ts.Fatalf("hub-standin: %d commits, want %s", h.hub.Commits(), args[1])
		}
	case len(args) == 3 && args[0] == "file":
		data, ok := h.hub.File("dataset", args[1], args[2])
		if ok == neg {
			ts.Fatalf("hub-standin: %s in %s: present %v", args[2], args[1], ok)
		}
		ts.Stdout().Write(data)
	case !neg && len(args) == 2:
		srv := hubtest.NewServer()
		srv.AllowToken(args[0], args[1])
		ts.Defer(srv.Close)
		h.hub = srv
		ts.Setenv("HF_ENDPOINT", srv.URL)
	default:
		ts.Fatalf("usage: hub-standin TOKEN SCOPE | hub-standin file OWNER/NAME PATH | hub-standin commits N")
	}
}

// A reader that went away (`llem params | head`, EPIPE) is not an error
// worth a message on top of the output it took.
func TestReportBrokenPipeQuiet(t *testing.T) {
	var b strings.Builder
	if code := report(&b, fmt.Errorf("write /dev/stdout: %w", syscall.EPIPE)); code == 0 || b.Len() != 0 {
		t.Errorf("broken pipe: code %d, printed %q", code, b.String())
	}
	if report(&b, errors.New("boom")); !strings.Contains(b.String(), "llem: boom") {
		t.Errorf("other errors still printed: %q", b.String())
	}
}
