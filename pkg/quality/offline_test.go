package quality

import (
	"os"
	"path/filepath"
	"testing"
)

func TestDatasetCached(t *testing.T) {
	hub, ds := t.TempDir(), t.TempDir()
	if DatasetCached("Rowan/hellaswag", hub, ds) {
		t.Fatal("empty caches")
	}
	// An empty snapshots directory (an interrupted download) is not a cache.
	os.MkdirAll(filepath.Join(hub, "datasets--Rowan--hellaswag", "snapshots"), 0o755)
	if DatasetCached("Rowan/hellaswag", hub, ds) {
		t.Fatal("empty snapshots dir counted")
	}
	os.MkdirAll(filepath.Join(hub, "datasets--Rowan--hellaswag", "snapshots", "abc"), 0o755)
	if !DatasetCached("Rowan/hellaswag", hub, ds) {
		t.Fatal("hub snapshot not seen")
	}
	os.MkdirAll(filepath.Join(ds, "allenai___ai2_arc", "ARC-Easy"), 0o755)
	if !DatasetCached("allenai/ai2_arc", hub, ds) {
		t.Fatal("datasets cache not seen")
	}
	os.MkdirAll(filepath.Join(ds, "gsm8k", "main"), 0o755)
	if !DatasetCached("gsm8k", hub, ds) {
		t.Fatal("un-namespaced datasets cache not seen")
	}
	local := t.TempDir()
	if !DatasetCached(local, hub, ds) {
		t.Fatal("a local dataset directory is offline by definition")
	}
}

func TestOfflineAndTaskData(t *testing.T) {
	env := map[string]string{"HF_HUB_OFFLINE": "1"}
	if !Offline(func(k string) string { return env[k] }) || Offline(func(string) string { return "" }) {
		t.Fatal("Offline")
	}
	m, err := ParseTaskData([]byte(`{"hellaswag": {"dataset_path": "Rowan/hellaswag", "dataset_name": null}, "nope": {"unknown": true}, "mmlu": {"skipped": "a group or tag"}}`))
	if err != nil || m["hellaswag"].DatasetPath != "Rowan/hellaswag" || !m["nope"].Unknown || m["mmlu"].Skipped == "" {
		t.Fatalf("%+v %v", m, err)
	}
	if _, err := ParseTaskData([]byte(`{"_error": "lm-eval's TaskManager: boom"}`)); err == nil {
		t.Fatal("probe error must be an error")
	}
}
