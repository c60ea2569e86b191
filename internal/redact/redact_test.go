package redact

import "testing"

func TestURL(t *testing.T) {
	t.Parallel()
	for in, want := range map[string]string{
		"":                                       "",
		"unix:///var/run/docker.sock":            "unix:///var/run/docker.sock",
		"tcp://10.0.0.1:2376":                    "tcp://10.0.0.1:2376",
		"tcp://alice:s3cret@10.0.0.1:2376":       "tcp://alice:redacted@10.0.0.1:2376",
		"ssh://bob@build-host":                   "ssh://bob@build-host",
		"ssh://bob:hunter2@build-host:22":        "ssh://bob:redacted@build-host:22",
		"https://hub.example/api?token=abc&x=1":  "https://hub.example/api?token=redacted&x=1",
		"https://hub.example/api?Api_Key=abc":    "https://hub.example/api?Api_Key=redacted",
		"alice:pw@host:2376":                     "alice:redacted@host:2376",
		"https://user:p%40ss@proxy.example:3128": "https://user:redacted@proxy.example:3128",
	} {
		if got := URL(in); got != want {
			t.Errorf("URL(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestText(t *testing.T) {
	t.Parallel()
	in := `failed to connect to the docker API at tcp://alice:s3cret@10.0.0.1:2376: dial tcp: refused; also ssh://bob@h and https://u:p@x/y`
	want := `failed to connect to the docker API at tcp://alice:redacted@10.0.0.1:2376: dial tcp: refused; also ssh://bob@h and https://u:redacted@x/y`
	if got := Text(in); got != want {
		t.Errorf("Text =\n%s\nwant\n%s", got, want)
	}
}
