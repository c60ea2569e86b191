package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
)

func TestEnvAlwaysExitsZero(t *testing.T) {
	t.Setenv("PATH", t.TempDir()) // no python: keeps the probe instant
	t.Setenv("LLEM_PYTHON", "")
	t.Setenv("VIRTUAL_ENV", "")
	t.Setenv("CONDA_PREFIX", "")
	t.Setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
	t.Setenv("XDG_CONFIG_HOME", t.TempDir())

	var out, errb bytes.Buffer
	code := Main(context.Background(), []string{"env", "--json"}, IO{Stdout: &out, Stderr: &errb})
	if code != 0 {
		t.Fatalf("exit %d, stderr %s", code, errb.String())
	}
	var rep envReport
	if err := json.Unmarshal(out.Bytes(), &rep); err != nil {
		t.Fatalf("decode: %v\n%s", err, out.String())
	}
	if rep.Environment.Fingerprint == "" || rep.Sensor.Requested != "auto" || len(rep.Sensor.Tried) == 0 {
		t.Errorf("report = %+v", rep)
	}
	if rep.Docker.Reachable || !strings.Contains(rep.Docker.Host, "nonexistent") || rep.Config.Exists {
		t.Errorf("docker %+v config %+v", rep.Docker, rep.Config)
	}
	if len(rep.Backends) != 3 || rep.Backends[0].Error == "" {
		t.Errorf("backends = %+v", rep.Backends)
	}

	out.Reset()
	if code := Main(context.Background(), []string{"env"}, IO{Stdout: &out, Stderr: &errb}); code != 0 {
		t.Fatalf("text exit %d", code)
	}
	for _, want := range []string{"Energy sensor (energy.sensor: auto)", "Hardware fingerprint", "User config", "Backends"} {
		if !strings.Contains(out.String(), want) {
			t.Errorf("text output lacks %q:\n%s", want, out.String())
		}
	}
}
