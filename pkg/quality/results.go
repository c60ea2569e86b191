package quality

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// Results is lm-eval's results file, the JSON its EvaluationTracker
// writes to <output_path>/<model_name_sanitized>/results_<date>.json
// (lm_eval/loggers/evaluation_tracker.py, save_results_aggregated, @da2119697bd3b16e707f71d0886aed2cf5b0cd40):
// simple_evaluate's dict ("results", "groups", "versions", "n-shot",
// "higher_is_better", "n-samples", "config", "git_hash", "date",
// add_env_info's "lm_eval_version" — absent before 0.4.8 —, …) plus the
// tracker's general config. Only what llem records is decoded; every part
// is optional and read leniently (a task's stderr may be the string "N/A").
type Results struct {
	// Results maps task → "metric,filter" → value (numbers; "alias" and
	// "name" strings; "N/A" for unavailable stderrs).
	Results map[string]map[string]json.RawMessage
	// Groups holds group aggregates (same shape), when tasks were groups.
	Groups         map[string]map[string]json.RawMessage
	Versions       map[string]string // the task's version, as written ("1.0")
	NShot          map[string]int
	HigherIsBetter map[string]map[string]bool
	NSamples       map[string]SampleCount
	LMEvalVersion  string
	GitHash        string
	ModelName      string
}

// SampleCount is n-samples' entry: examples in the task and scored.
type SampleCount struct {
	Original  *int `json:"original"`
	Effective *int `json:"effective"`
}

// ErrNoResults says lm-eval wrote no results file (it crashed, or was
// given no --output_path).
var ErrNoResults = errors.New("lm-eval wrote no results file")

// FindResults returns the newest results_*.json under outDir (lm-eval
// puts it in a directory named after the sanitized model name; a path
// ending in .json puts it beside). Names carry an ISO timestamp, so the
// lexically last is the newest.
func FindResults(outDir string) (string, error) {
	var found []string
	err := filepath.WalkDir(outDir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			if errors.Is(err, os.ErrNotExist) {
				return nil
			}
			return err
		}
		if !d.IsDir() && strings.HasPrefix(d.Name(), "results_") && strings.HasSuffix(d.Name(), ".json") {
			found = append(found, p)
		}
		return nil
	})
	if err != nil {
		return "", err
	}
	if len(found) == 0 {
		return "", fmt.Errorf("%w under %s", ErrNoResults, outDir)
	}
	sort.Slice(found, func(i, j int) bool { return filepath.Base(found[i]) < filepath.Base(found[j]) })
	return found[len(found)-1], nil
}

// ParseResults decodes lm-eval's results JSON. It fails only when the text
// is not a JSON object or has no "results" object; odd parts are skipped.
func ParseResults(data []byte) (*Results, error) {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(data, &top); err != nil {
		return nil, fmt.Errorf("lm-eval results: %w", err)
	}
	r := &Results{}
	if err := json.Unmarshal(top["results"], &r.Results); err != nil || r.Results == nil {
		return nil, errors.New(`lm-eval results: no "results" object`)
	}
	_ = json.Unmarshal(top["groups"], &r.Groups)
	var versions map[string]json.RawMessage
	if json.Unmarshal(top["versions"], &versions) == nil {
		r.Versions = map[string]string{}
		for t, v := range versions {
			r.Versions[t] = rawScalar(v)
		}
	}
	var nshot map[string]json.RawMessage
	if json.Unmarshal(top["n-shot"], &nshot) == nil {
		r.NShot = map[string]int{}
		for t, v := range nshot {
			var n float64
			if json.Unmarshal(v, &n) == nil && n >= 0 && n == math.Trunc(n) && n < 1e9 {
				r.NShot[t] = int(n)
			}
		}
	}
	var hib map[string]json.RawMessage
	if json.Unmarshal(top["higher_is_better"], &hib) == nil {
		r.HigherIsBetter = map[string]map[string]bool{}
		for t, v := range hib {
			var m map[string]bool
			if json.Unmarshal(v, &m) == nil {
				r.HigherIsBetter[t] = m
			}
		}
	}
	var ns map[string]json.RawMessage
	if json.Unmarshal(top["n-samples"], &ns) == nil {
		r.NSamples = map[string]SampleCount{}
		for t, v := range ns {
			var c SampleCount
			if json.Unmarshal(v, &c) == nil {
				r.NSamples[t] = c
			}
		}
	}
	_ = json.Unmarshal(top["lm_eval_version"], &r.LMEvalVersion)
	_ = json.Unmarshal(top["git_hash"], &r.GitHash)
	_ = json.Unmarshal(top["model_name"], &r.ModelName)
	return r, nil
}

// rawScalar is a JSON number or string as text ("" otherwise).
func rawScalar(v json.RawMessage) string {
	v = bytes.TrimSpace(v)
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	var n json.Number
	d := json.NewDecoder(bytes.NewReader(v))
	d.UseNumber()
	if d.Decode(&n) == nil {
		return n.String()
	}
	return ""
}

// number is a finite JSON number (false for "N/A", null, strings, …).
func number(v json.RawMessage) (float64, bool) {
	var f float64
	if json.Unmarshal(v, &f) != nil || math.IsNaN(f) || math.IsInf(f, 0) {
		return 0, false
	}
	return f, true
}

// defaultMetrics are tried in order when quality.metrics names none for a
// task: the usual headline metric of lm-eval's multiple-choice and
// generation tasks.
var defaultMetrics = []string{"acc_norm", "acc", "exact_match", "f1", "mc2", "em", "bleu", "rougeL"}

// Tasks turns a results file into the record's per-task results for the
// requested tasks (a group's aggregate when a task is a group), choosing
// each task's metric (quality.metrics, else the first of defaultMetrics,
// filter "none" first) and weighting it. A requested task lm-eval did not
// report is an error: the score would silently mean something else.
func Tasks(r *Results, q *study.Quality) ([]result.QualityTask, error) {
	out := make([]result.QualityTask, 0, len(q.Tasks))
	for _, name := range q.Tasks {
		vals, ok := r.Results[name]
		if !ok {
			vals, ok = r.Groups[name]
		}
		if !ok {
			return nil, fmt.Errorf("lm-eval reported no result for task %s (reported: %s)", name, strings.Join(sortedKeys(r.Results), ", "))
		}
		t := result.QualityTask{Task: name, Weight: Weight(q, name), Metrics: map[string]float64{}}
		for k, v := range vals {
			if f, ok := number(v); ok && strings.Contains(k, ",") {
				t.Metrics[k] = f
			}
		}
		if n, ok := r.NShot[name]; ok {
			t.NShot = &n
		}
		t.Version = r.Versions[name]
		if c, ok := r.NSamples[name]; ok {
			t.Samples, t.SamplesTotal = c.Effective, c.Original
		}
		key, ok := pickMetric(t.Metrics, q.Metrics[name])
		if !ok {
			if want := q.Metrics[name]; want != "" {
				return nil, fmt.Errorf("task %s reports no metric %s (it reports: %s)", name, want, strings.Join(metricKeys(t.Metrics), ", "))
			}
			t.Scored = false
			out = append(out, t)
			continue
		}
		t.Metric, t.Filter, _ = strings.Cut(key, ",")
		t.Value = t.Metrics[key]
		if se, ok := t.Metrics[t.Metric+"_stderr,"+t.Filter]; ok {
			t.Stderr = &se
		}
		if hb, ok := r.HigherIsBetter[name][t.Metric]; ok {
			t.HigherIsBetter = &hb
		}
		t.Scored = t.HigherIsBetter == nil || *t.HigherIsBetter
		out = append(out, t)
	}
	return out, nil
}

// metricKeys lists metric keys without their stderrs.
func metricKeys(m map[string]float64) []string {
	var ks []string
	for _, k := range sortedKeys(m) {
		if name, _, _ := strings.Cut(k, ","); !strings.HasSuffix(name, "_stderr") {
			ks = append(ks, k)
		}
	}
	return ks
}

// pickMetric chooses the metric key ("acc_norm,none") of a task: want
// ("acc_norm" or "exact_match,strict-match") when set, else the first of
// defaultMetrics; filter "none" is preferred, then the first filter in
// order.
func pickMetric(m map[string]float64, want string) (string, bool) {
	names := defaultMetrics
	if want != "" {
		if _, ok := m[want]; ok && strings.Contains(want, ",") {
			return want, true
		}
		names = []string{want}
	}
	keys := metricKeys(m)
	for _, n := range names {
		if _, ok := m[n+",none"]; ok {
			return n + ",none", true
		}
		for _, k := range keys {
			if name, _, _ := strings.Cut(k, ","); name == n {
				return k, true
			}
		}
	}
	return "", false
}

// Score is the weighted mean of the scored tasks' values, and its standard
// error sqrt(Σ (wᵢ/W)² seᵢ²) treating tasks as independent — only when
// every scored task reports a stderr. ok is false when no task is scored.
func Score(tasks []result.QualityTask) (score float64, stderr *float64, ok bool) {
	var w, sum, v float64
	allSE := true
	for _, t := range tasks {
		if !t.Scored {
			continue
		}
		w += t.Weight
		sum += t.Weight * t.Value
	}
	if w <= 0 {
		return 0, nil, false
	}
	for _, t := range tasks {
		if !t.Scored {
			continue
		}
		if t.Stderr == nil {
			allSE = false
			break
		}
		v += (t.Weight / w) * (t.Weight / w) * *t.Stderr * *t.Stderr
	}
	if allSE {
		se := math.Sqrt(v)
		stderr = &se
	}
	return sum / w, stderr, true
}

// Fill reads the results file at path into q: tasks, score, lm-eval's
// version and git hash. Warnings note tasks left out of the score.
func Fill(q *result.QualityRecord, data []byte, cfg *study.Quality) error {
	r, err := ParseResults(data)
	if err != nil {
		return err
	}
	tasks, err := Tasks(r, cfg)
	if err != nil {
		return err
	}
	q.Tasks = tasks
	q.LMEvalVersion, q.GitHash = r.LMEvalVersion, r.GitHash
	for _, t := range tasks {
		switch {
		case t.Metric == "":
			q.Warnings = append(q.Warnings, fmt.Sprintf("task %s reports none of %s: not in the score (set quality.metrics.%s)", t.Task, strings.Join(defaultMetrics, ", "), t.Task))
		case !t.Scored:
			q.Warnings = append(q.Warnings, fmt.Sprintf("task %s's metric %s is lower-is-better: not in the score", t.Task, t.Metric))
		}
	}
	s, se, ok := Score(tasks)
	if !ok {
		return errors.New("no task gave a higher-is-better metric to score; set quality.metrics")
	}
	q.Score, q.ScoreStderr = &s, se
	if cfg.Limit != nil {
		l := *cfg.Limit
		q.Limit = &l
		q.Warnings = append(q.Warnings, "quality.limit is set ("+strconv.FormatFloat(l, 'g', -1, 64)+"): lm-eval scored a subset of each task; use limited scores for testing, not for claims")
	}
	return nil
}
