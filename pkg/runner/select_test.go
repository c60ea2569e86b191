package runner

import "testing"

func TestSelectPrecedence(t *testing.T) {
	tests := []struct {
		name       string
		in         SelectInput
		env        string
		wantKind   string
		wantSource string
		wantErr    bool
	}{
		{"flag beats everything", SelectInput{Backend: "vllm", Flag: "local", Study: "docker", UserConfig: "docker"}, "docker", "local", SourceFlag, false},
		{"env beats study", SelectInput{Backend: "vllm", Study: "local"}, "docker", "docker", SourceEnv, false},
		{"study beats user config", SelectInput{Backend: "pytorch", Study: "docker", UserConfig: "local"}, "", "docker", SourceStudy, false},
		{"user config when study says auto", SelectInput{Backend: "pytorch", Study: "auto", UserConfig: "docker"}, "", "docker", SourceUserConfig, false},
		{"auto with a LocalReason (native) is local", SelectInput{Backend: "native", DaemonUp: true, LocalReason: "the native worker is llem itself"}, "", "local", SourceAuto, false},
		{"auto vllm importable is local", SelectInput{Backend: "vllm", Importable: true, DaemonUp: true}, "", "local", SourceAuto, false},
		{"auto vllm not importable, daemon up: docker", SelectInput{Backend: "vllm", DaemonUp: true}, "", "docker", SourceAuto, false},
		{"auto tensorrt nothing available: local", SelectInput{Backend: "tensorrt"}, "", "local", SourceAuto, false},
		{"bad value", SelectInput{Backend: "vllm", Study: "podman"}, "", "", "", true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("LLEM_RUNNER_"+map[string]string{"vllm": "VLLM", "pytorch": "PYTORCH", "native": "NATIVE", "tensorrt": "TENSORRT"}[tc.in.Backend], tc.env)
			c, err := Select(tc.in)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v", err)
			}
			if tc.wantErr {
				return
			}
			if c.Kind != tc.wantKind || c.Source != tc.wantSource || c.Reason == "" {
				t.Fatalf("got %+v, want %s from %s", c, tc.wantKind, tc.wantSource)
			}
		})
	}
}
