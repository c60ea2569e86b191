package hfcache

import (
	"path/filepath"
	"testing"
)

func TestHubDirPrecedence(t *testing.T) {
	for _, tc := range []struct {
		hubCache, hfHome, xdg, home, want string
	}{
		{"/a", "/b", "/c", "/h", "/a"},
		{"", "/b", "/c", "/h", "/b/hub"},
		{"", "", "/c", "/h", "/c/huggingface/hub"},
		{"", "", "", "/h", "/h/.cache/huggingface/hub"},
	} {
		t.Setenv("HF_HUB_CACHE", tc.hubCache)
		t.Setenv("HF_HOME", tc.hfHome)
		t.Setenv("XDG_CACHE_HOME", tc.xdg)
		t.Setenv("HOME", tc.home)
		if got := HubDir(); got != filepath.FromSlash(tc.want) {
			t.Errorf("%+v: got %s", tc, got)
		}
	}
}
