package quality

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// TaskDataProbe is a Python program run with lm-eval's interpreter before
// an offline study: for each task name (argv) it prints where lm-eval's
// task config takes its data from, or that lm-eval knows no such task. It
// reads lm-eval's task YAMLs only (TaskManager indexes them locally;
// _get_config is lm_eval/tasks/__init__.py's config reader in 0.4.x): no
// dataset is opened, nothing is downloaded.
const TaskDataProbe = `import json, sys
try:
    from lm_eval.tasks import TaskManager
    tm = TaskManager()
    known = set(tm.all_tasks)
except Exception as e:
    print(json.dumps({"_error": "lm-eval's TaskManager: %s" % e})); sys.exit(0)
out = {}
for t in sys.argv[1:]:
    if "*" in t:
        out[t] = {"skipped": "wildcard"}; continue
    if t not in known:
        out[t] = {"unknown": True}; continue
    try:
        cfg = tm._get_config(t)
    except Exception as e:
        out[t] = {"skipped": "config unreadable: %s" % e}; continue
    if not isinstance(cfg, dict) or "dataset_path" not in cfg:
        out[t] = {"skipped": "a group or tag: its subtasks are not checked"}; continue
    out[t] = {"dataset_path": cfg.get("dataset_path"), "dataset_name": cfg.get("dataset_name")}
print(json.dumps(out))
`

// TaskData is one task's line of TaskDataProbe's answer.
type TaskData struct {
	DatasetPath string  `json:"dataset_path"`
	DatasetName *string `json:"dataset_name"`
	Unknown     bool    `json:"unknown"`
	Skipped     string  `json:"skipped"`
}

// ParseTaskData reads TaskDataProbe's output.
func ParseTaskData(out []byte) (map[string]TaskData, error) {
	var raw map[string]json.RawMessage
	if err := json.Unmarshal(out, &raw); err != nil {
		return nil, fmt.Errorf("lm-eval task probe: %w", err)
	}
	if e, ok := raw["_error"]; ok {
		var s string
		_ = json.Unmarshal(e, &s)
		return nil, fmt.Errorf("lm-eval task probe: %s", s)
	}
	m := make(map[string]TaskData, len(raw))
	for k, v := range raw {
		var d TaskData
		if err := json.Unmarshal(v, &d); err != nil {
			return nil, fmt.Errorf("lm-eval task probe: task %s: %w", k, err)
		}
		m[k] = d
	}
	return m, nil
}

// Offline reports whether the Hugging Face libraries are told to stay
// offline (huggingface_hub's and datasets' switches take 1, true, yes, on).
func Offline(getenv func(string) string) bool {
	for _, k := range []string{"HF_HUB_OFFLINE", "HF_DATASETS_OFFLINE"} {
		switch strings.ToLower(strings.TrimSpace(getenv(k))) {
		case "1", "true", "yes", "on":
			return true
		}
	}
	return false
}

// DatasetsDir is datasets' own cache: $HF_DATASETS_CACHE, else
// $HF_HOME/datasets, else ~/.cache/huggingface/datasets
// (datasets/config.py).
func DatasetsDir(getenv func(string) string) string {
	if d := getenv("HF_DATASETS_CACHE"); d != "" {
		return d
	}
	if d := getenv("HF_HOME"); d != "" {
		return filepath.Join(d, "datasets")
	}
	if d := getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "huggingface", "datasets")
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "huggingface", "datasets")
}

// DatasetCached reports whether a task's dataset can be had offline: a
// local directory or file; or the Hub repo's snapshot in the hub cache
// (hubDir/datasets--org--name/snapshots/<rev>/, huggingface_hub's layout);
// or datasets' prepared copy (datasetsDir/org___name/, datasets' builder
// cache directory for a namespaced dataset, or datasetsDir/name/). It
// checks presence, not completeness: a cached repo missing the task's
// config or split still fails inside lm-eval, and is recorded as a failed
// scoring.
func DatasetCached(path, hubDir, datasetsDir string) bool {
	if path == "" {
		return false
	}
	if fi, err := os.Stat(path); err == nil && (fi.IsDir() || fi.Mode().IsRegular()) && (filepath.IsAbs(path) || strings.HasPrefix(path, ".")) {
		return true
	}
	snaps := filepath.Join(hubDir, "datasets--"+strings.ReplaceAll(path, "/", "--"), "snapshots")
	if nonEmpty(snaps) {
		return true
	}
	if nonEmpty(filepath.Join(datasetsDir, strings.ReplaceAll(path, "/", "___"))) {
		return true
	}
	return !strings.Contains(path, "/") && nonEmpty(filepath.Join(datasetsDir, path))
}

func nonEmpty(dir string) bool {
	es, err := os.ReadDir(dir)
	return err == nil && len(es) > 0
}
