package native

import (
	"context"
	"encoding/json"
	"os"
	"testing"

	"github.com/llenergymeasure/llem/internal/testmodel"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/runner"
)

func TestJob(t *testing.T) {
	spec := protocol.RunSpec{RunID: "r", Config: json.RawMessage(`{}`)}
	j, err := Job(spec, JobOptions{Executable: "/opt/llem"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Backend != "native" || len(j.Command) != 2 || j.Command[0] != "/opt/llem" || j.Command[1] != "worker" || j.Spec.ProtocolVersion != protocol.ProtocolVersion {
		t.Errorf("job = %+v", j)
	}
	j, err = Job(spec, JobOptions{})
	if exe, _ := os.Executable(); err != nil || j.Command[0] != exe {
		t.Errorf("default executable: %v, %v", j.Command, err)
	}
	spec.ProtocolVersion = 99
	if _, err := Job(spec, JobOptions{}); err == nil {
		t.Error("accepted a foreign protocol version")
	}
}

// TestJobThroughLocalRunner runs a native job end to end with the real local
// runner, the worker being this test binary re-executed as `llem worker`
// would be (see TestHelperWorker).
func TestJobThroughLocalRunner(t *testing.T) {
	cfg := baseConfig()
	cfg["model"], cfg["n"] = testmodel.TinyCheckpoint(t), 3
	raw, _ := json.Marshal(cfg)
	j, err := Job(protocol.RunSpec{RunID: "local", Config: raw}, JobOptions{Dir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	// The test binary stands in for llem: it runs TestHelperWorker, which
	// calls Run on stdin/stdout.
	j.Command = []string{os.Args[0], "-test.run=^TestHelperWorker$"}
	j.Env = map[string]string{"LLEM_NATIVE_HELPER": "1"}
	var events []protocol.Event
	out, err := runner.NewLocal().Run(context.Background(), j, func(ev protocol.Event) { events = append(events, ev) })
	if err != nil {
		t.Fatal(err)
	}
	if !out.OK() {
		t.Fatalf("outcome %+v", out)
	}
	sum, err := protocol.Validate(events)
	if err != nil || sum.Done == nil || sum.Done.Requests != 3 {
		t.Fatalf("events: %v, done %+v", err, sum.Done)
	}
}

// TestHelperWorker is the worker process of TestJobThroughLocalRunner.
func TestHelperWorker(t *testing.T) {
	if os.Getenv("LLEM_NATIVE_HELPER") != "1" {
		t.Skip("helper process for TestJobThroughLocalRunner")
	}
	err := Run(context.Background(), os.Stdin, os.Stdout)
	if err != nil {
		os.Exit(1)
	}
	os.Exit(0)
}
