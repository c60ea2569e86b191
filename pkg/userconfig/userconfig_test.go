package userconfig

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/llenergymeasure/llem/internal/errs"
)

func env(m map[string]string) func(string) string { return func(k string) string { return m[k] } }

func write(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "config.yaml")
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestPathXDG(t *testing.T) {
	cases := []struct {
		env  map[string]string
		want string
	}{
		{map[string]string{"LLEM_CONFIG": "/x/c.yaml", "XDG_CONFIG_HOME": "/xdg"}, "/x/c.yaml"},
		{map[string]string{"XDG_CONFIG_HOME": "/xdg", "HOME": "/home/u"}, "/xdg/llenergymeasure/config.yaml"},
		{map[string]string{"HOME": "/home/u"}, "/home/u/.config/llenergymeasure/config.yaml"},
	}
	for _, c := range cases {
		if got := Path(env(c.env)); got != c.want {
			t.Errorf("Path(%v) = %q, want %q", c.env, got, c.want)
		}
	}
}

func TestMissingFileIsDefaults(t *testing.T) {
	l, err := LoadFile(filepath.Join(t.TempDir(), "nope.yaml"), env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if l.Found || l.ResultsDir != "results" || l.Energy.Sensor != "auto" || len(l.Set) != 0 {
		t.Errorf("got %+v", l)
	}
}

func TestFileAndEnvPrecedence(t *testing.T) {
	p := write(t, `
results_dir: /data/llem
energy:
  sensor: rapl
carbon:
  region: DEU
  pue: 1.3
runners:
  vllm: docker
images:
  vllm: example/llem-vllm:0.1
`)
	l, err := LoadFile(p, env(map[string]string{"LLEM_CARBON_INTENSITY": "120", "LLEM_RUNNER_PYTORCH": "docker", "LLEM_PUE": "1.1"}))
	if err != nil {
		t.Fatal(err)
	}
	if !l.Found || l.ResultsDir != "/data/llem" || l.Energy.Sensor != "rapl" || l.Carbon.Region != "DEU" ||
		*l.Carbon.IntensityGPerKWh != 120 || *l.Carbon.PUE != 1.1 || l.Runners["vllm"] != "docker" || l.Runners["pytorch"] != "docker" {
		t.Errorf("got %+v", l.Config)
	}
	want := map[string]string{"results_dir": "file", "energy.sensor": "file", "carbon.region": "file",
		"carbon.pue": "env LLEM_PUE", "carbon.intensity_g_per_kwh": "env LLEM_CARBON_INTENSITY",
		"runners.vllm": "file", "runners.pytorch": "env LLEM_RUNNER_PYTORCH", "images.vllm": "file"}
	for k, v := range want {
		if l.Set[k] != v {
			t.Errorf("Set[%s] = %q, want %q", k, l.Set[k], v)
		}
	}
	s := strings.Join(l.Settings(), "\n")
	if !strings.Contains(s, "carbon.pue = 1.1 (env LLEM_PUE)") || !strings.Contains(s, "results_dir = /data/llem (file)") {
		t.Errorf("Settings:\n%s", s)
	}
}

func TestStrictErrors(t *testing.T) {
	cases := []struct {
		name, body string
		env        map[string]string
		want       []string
	}{
		{"typo top", "reslts_dir: x\n", nil, []string{"config.yaml:1", `unknown key "reslts_dir"`, `did you mean "results_dir"`}},
		{"typo nested", "carbon:\n  region: FRA\n  intensity: 50\n", nil, []string{"config.yaml:3", `"carbon.intensity"`, `did you mean "carbon.intensity_g_per_kwh"`}},
		{"bad sensor", "energy:\n  sensor: wattmeter\n", nil, []string{`energy.sensor "wattmeter"`}},
		{"bad runner", "runners:\n  vllm: slurm\n", nil, []string{"runners.vllm", "local or docker"}},
		{"bad backend", "images:\n  onnx: x\n", nil, []string{"images.onnx: unknown backend"}},
		{"bad type", "carbon:\n  pue: high\n", nil, []string{"line 2"}},
		{"not mapping", "- a\n- b\n", nil, []string{"must be a mapping"}},
		{"bad env float", "", map[string]string{"LLEM_CARBON_INTENSITY": "lots"}, []string{"LLEM_CARBON_INTENSITY", "not a number"}},
		{"bad pue", "carbon:\n  pue: 0.5\n", nil, []string{"carbon.pue = 0.5"}},
		{"unknown region", "carbon:\n  region: Mordor\n", nil, []string{"unknown carbon region"}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := LoadFile(write(t, c.body), env(c.env))
			if err == nil {
				t.Fatal("want an error")
			}
			for _, w := range c.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if errs.ExitCode(err) != errs.ExitBadInput {
				t.Errorf("exit code %d, want %d", errs.ExitCode(err), errs.ExitBadInput)
			}
		})
	}
}

// FuzzDecode: any file content yields a config or an error, never a panic,
// and every error from a file is the user's (exit 2).
func FuzzDecode(f *testing.F) {
	f.Add("results_dir: x\ncarbon:\n  region: FRA\n")
	f.Add("energy: [1, 2]\n")
	f.Add("runners:\n  vllm: docker\nimages: {vllm: img}\n")
	f.Add(":\n- -\n  ? x\n")
	f.Fuzz(func(t *testing.T, body string) {
		p := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			t.Fatal(err)
		}
		l, err := LoadFile(p, env(nil))
		if err != nil {
			if errs.ExitCode(err) != errs.ExitBadInput {
				t.Errorf("error %v has exit code %d, want %d", err, errs.ExitCode(err), errs.ExitBadInput)
			}
			return
		}
		if err := l.Config.Validate(); err != nil {
			t.Errorf("loaded config does not validate: %v", err)
		}
	})
}

func TestSharingSecretsNeverShown(t *testing.T) {
	p := write(t, "sharing:\n  url: https://archive.example.org\n  api_key: file-secret\n  hf_token: hf-secret\n")
	l, err := LoadFile(p, env(nil))
	if err != nil {
		t.Fatal(err)
	}
	if l.Sharing.APIKey != "file-secret" || l.Sharing.HFToken != "hf-secret" || l.Sharing.URL != "https://archive.example.org" {
		t.Fatalf("sharing = %+v", l.Sharing)
	}
	l, err = LoadFile(p, env(map[string]string{"LLEM_API_KEY": "env-secret"}))
	if err != nil {
		t.Fatal(err)
	}
	if l.Sharing.APIKey != "env-secret" || l.Set["sharing.api_key"] != "env LLEM_API_KEY" {
		t.Fatalf("LLEM_API_KEY did not win: %+v", l.Set)
	}
	shown := strings.Join(l.Settings(), "\n")
	js, _ := json.Marshal(l)
	for _, out := range []string{shown, string(js)} {
		if strings.Contains(out, "secret") {
			t.Fatalf("a secret is shown: %s", out)
		}
	}
	if !strings.Contains(shown, "sharing.api_key = redacted (env LLEM_API_KEY)") {
		t.Fatalf("settings: %s", shown)
	}
}
