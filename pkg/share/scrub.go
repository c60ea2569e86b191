// Package share is the client side of sharing results: it decides what of a
// study leaves the machine (Scrub), reads a study's verified records into a
// push (Collect), and sends them to an llem archive in batches that resume
// (Client, speaking pkg/archive/wire). docs/sharing.md is the user's view of
// the same rules; keep the two in step.
package share

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/user"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"sync"
	"unicode/utf8"
)

// envKept is the allowlist of environment fields a pushed record keeps
// (paths inside record.environment; "[]" is every array element, "*" every
// map key). Everything else in the snapshot is removed, so a field added to
// envinfo later stays on the machine until it is judged here.
var envKept = []string{
	"collected_at",
	"llem.version", "llem.commit", "llem.go",
	"gpu.driver_version", "gpu.cuda_driver_version", "gpu.nvml_version", "gpu.unavailable",
	"gpu.gpus[].index", "gpu.gpus[].name", "gpu.gpus[].architecture", "gpu.gpus[].compute_capability",
	"gpu.gpus[].memory_total_bytes",
	"gpu.gpus[].power_limit_w", "gpu.gpus[].default_power_limit_w", "gpu.gpus[].min_power_limit_w",
	"gpu.gpus[].max_power_limit_w", "gpu.gpus[].enforced_power_limit_w",
	"gpu.gpus[].persistence_mode", "gpu.gpus[].ecc_enabled", "gpu.gpus[].mig_enabled",
	"gpu.gpus[].sm_clock_mhz", "gpu.gpus[].mem_clock_mhz", "gpu.gpus[].max_sm_clock_mhz", "gpu.gpus[].max_mem_clock_mhz",
	"gpu.gpus[].has_energy_counter", "gpu.gpus[].has_instant_power", "gpu.gpus[].selected",
	"cpu.model", "cpu.sockets", "cpu.cores", "cpu.threads", "cpu.hypervisor", "cpu.governor",
	"memory_bytes",
	"os.name", "os.kernel", "os.arch",
	"container.detected", "container.runtime",
	"runners.*.kind", "runners.*.source", "runners.*.image_source", "runners.*.image_id",
	// image and image_digest name a registry and repository: kept only for
	// llem's public release images (see keepImage).
	"runners.*.image", "runners.*.image_digest",
	"fingerprint",
}

// envRemovedWhy explains the removals people ask about; any other field off
// the allowlist is removed as "not on the allowlist".
var envRemovedWhy = map[string]string{
	"gpu.gpus[].uuid":          "the GPU's serial identity names the physical machine (the fingerprint stands in for it)",
	"gpu.gpus[].pci_bus_id":    "the machine's slot layout, not needed to compare results",
	"container.evidence":       "cgroup paths can name the host, pod or user",
	"runners.*.python":         "an interpreter path, usually under the home directory",
	"runners.*.image":          "a locally built or private image names a user or registry (kept for llem release images)",
	"runners.*.image_digest":   "a private repository name (kept for llem release images)",
	"gpu_settings[].uuid":      "the GPU's serial identity names the physical machine",
	"environment (not object)": "an environment that is not a JSON object cannot be checked field by field",
}

// recordRemoved are fields outside the environment that are removed.
var recordRemoved = []string{"gpu_settings[].uuid"}

// EnvFields returns the environment fields a pushed record may carry, for
// the confirmation prompt and the docs.
func EnvFields() []string { return slices.Clone(envKept) }

// RemovedReason says why a removed field is not uploaded.
func RemovedReason(field string) string {
	if why, ok := envRemovedWhy[field]; ok {
		return why
	}
	return "not on the allowlist of shared environment fields"
}

// Identity is what names the user on this machine: every string value of a
// pushed record has these replaced (home directory by "~", user name as a
// path component by "<user>", host name by "<host>").
type Identity struct {
	Home, User, Host string
}

// LocalIdentity reads the identity of the user running llem.
func LocalIdentity() Identity {
	var id Identity
	id.Home, _ = os.UserHomeDir()
	if u, err := user.Current(); err == nil {
		id.User = u.Username
	}
	if id.User == "" {
		id.User = os.Getenv("USER")
	}
	id.Host, _ = os.Hostname()
	return id
}

// Scrubbed is one record made fit to share.
type Scrubbed struct {
	// Record is the record to upload: compact JSON, numbers as written.
	Record json.RawMessage
	// Kept and Removed are the environment (and gpu_settings) field paths
	// that were present, in allowlist notation ("gpu.gpus[].name").
	Kept, Removed []string
	// Rewritten counts string values in which the identity was replaced.
	Rewritten int
}

// Scrub applies the sharing rules to one record file's JSON: environment
// fields off the allowlist and GPU UUIDs are removed, and the home
// directory, user name and host name are replaced in every string. Nothing
// else changes: numbers keep their text, so the archive's recomputed hash
// agrees. A record that is not a JSON object is an error.
func Scrub(raw []byte, id Identity) (*Scrubbed, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var rec map[string]any
	if err := dec.Decode(&rec); err != nil {
		return nil, fmt.Errorf("record is not a JSON object: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("record has trailing data after the JSON object")
	}
	if rec == nil {
		return nil, fmt.Errorf("record is null, not a JSON object")
	}
	s := &Scrubbed{}
	kept, removed := map[string]bool{}, map[string]bool{}
	if env, ok := rec["environment"]; ok && env != nil {
		if m, ok := env.(map[string]any); ok {
			rec["environment"] = filterEnv(m, "", kept, removed)
		} else {
			delete(rec, "environment")
			removed["environment (not object)"] = true
		}
	}
	if gs, ok := rec["gpu_settings"].([]any); ok {
		for _, g := range gs {
			if m, ok := g.(map[string]any); ok {
				if _, has := m["uuid"]; has {
					delete(m, "uuid")
					removed["gpu_settings[].uuid"] = true
				}
			}
		}
	}
	// The identity is replaced everywhere but in the environment, whose
	// allowlisted fields are hardware and software facts that the archive
	// recomputes the fingerprint from; only its free-text error is
	// rewritten.
	r := &replacer{replacerPatterns: patternsFor(id)}
	env, hasEnv := rec["environment"].(map[string]any)
	delete(rec, "environment")
	out := r.walk(rec).(map[string]any)
	if hasEnv {
		if gpu, ok := env["gpu"].(map[string]any); ok {
			if u, ok := gpu["unavailable"].(string); ok {
				gpu["unavailable"] = r.walk(u)
			}
		}
		out["environment"] = env
	}
	s.Rewritten = r.n
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(out); err != nil {
		return nil, err
	}
	s.Record = bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
	s.Kept, s.Removed = sortedKeys(kept), sortedKeys(removed)
	return s, nil
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

// filterEnv keeps the allowlisted leaves of an environment object. prefix
// is the allowlist path of m ("", "gpu.", "gpu.gpus[]." ...).
func filterEnv(m map[string]any, prefix string, kept, removed map[string]bool) map[string]any {
	out := map[string]any{}
	for k, v := range m {
		p := prefix + k
		if prefix == "runners." {
			p = "runners.*"
		}
		switch {
		case slices.Contains(envKept, p):
			if strings.HasPrefix(p, "runners.*.image") && !keepImage(m) {
				removed[p] = true
				continue
			}
			out[k] = v
			kept[p] = true
		case v == nil && (hasPrefixIn(p+".") || hasPrefixIn(p+"[].")):
			out[k] = nil // an absent list or section (no GPU) names nothing
		case hasPrefixIn(p + "."):
			if sub, ok := v.(map[string]any); ok {
				out[k] = filterEnv(sub, p+".", kept, removed)
				continue
			}
			removed[p] = true
		case hasPrefixIn(p + "[]."):
			arr, ok := v.([]any)
			if !ok {
				removed[p] = true
				continue
			}
			na := make([]any, 0, len(arr))
			for _, e := range arr {
				if sub, ok := e.(map[string]any); ok {
					na = append(na, filterEnv(sub, p+"[].", kept, removed))
				}
			}
			out[k] = na
		default:
			removed[p] = true
		}
	}
	return out
}

// keepImage reports whether a runner's image reference is one of llem's
// public release images (image_source "release image ...", set by
// pkg/pipeline), which identify nobody.
func keepImage(runner map[string]any) bool {
	src, _ := runner["image_source"].(string)
	return strings.HasPrefix(src, "release image")
}

func hasPrefixIn(prefix string) bool {
	for _, k := range envKept {
		if strings.HasPrefix(k, prefix) {
			return true
		}
	}
	return false
}

// replacer rewrites the identity in strings and counts the rewrites.
type replacer struct {
	*replacerPatterns
	n int
}

// replacerPatterns are the compiled patterns of one identity.
type replacerPatterns struct {
	home       string
	user, host *regexp.Regexp
}

// patterns caches the compiled patterns of the last identity (a push
// scrubs every record with the same one).
var patterns struct {
	sync.Mutex
	id Identity
	p  *replacerPatterns
}

func patternsFor(id Identity) *replacerPatterns {
	patterns.Lock()
	defer patterns.Unlock()
	if patterns.p == nil || patterns.id != id {
		patterns.id, patterns.p = id, newPatterns(id)
	}
	return patterns.p
}

func newPatterns(id Identity) *replacerPatterns {
	r := &replacerPatterns{}
	if h := filepath.Clean(id.Home); id.Home != "" && h != "/" && h != "." {
		r.home = h
	}
	// The user name only as a whole path component (/home/alice/...,
	// /Users/alice): a short name like "ai" must not eat ordinary words.
	if id.User != "" && id.User != "root" && len(id.User) <= 256 && utf8.ValidString(id.User) {
		r.user = regexp.MustCompile(`(^|[/\\])` + regexp.QuoteMeta(id.User) + `([/\\]|$)`)
	}
	// The host name as a whole word, and its short form, when long enough
	// not to match ordinary text.
	if h := id.Host; len(h) >= 3 && len(h) <= 253 && h != "localhost" && utf8.ValidString(h) {
		names := []string{regexp.QuoteMeta(h)}
		if short, _, ok := strings.Cut(h, "."); ok && len(short) >= 3 {
			names = append(names, regexp.QuoteMeta(short))
		}
		r.host = regexp.MustCompile(`(?i)\b(` + strings.Join(names, "|") + `)\b`)
	}
	return r
}

func (r *replacer) walk(v any) any {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			x[k] = r.walk(e)
		}
		return x
	case []any:
		for i, e := range x {
			x[i] = r.walk(e)
		}
		return x
	case string:
		s := r.str(x)
		if s != x {
			r.n++
		}
		return s
	}
	return v
}

func (r *replacer) str(s string) string {
	if r.home != "" {
		s = replaceHome(s, r.home)
	}
	if r.user != nil {
		s = r.user.ReplaceAllString(s, "${1}<user>${2}")
	}
	if r.host != nil {
		s = r.host.ReplaceAllString(s, "<host>")
	}
	return s
}

// replaceHome replaces home by "~" where it is a whole path prefix
// (followed by a separator, a quote, a space or the end).
func replaceHome(s, home string) string {
	var b strings.Builder
	for {
		i := strings.Index(s, home)
		if i < 0 {
			b.WriteString(s)
			return b.String()
		}
		end := i + len(home)
		if end == len(s) || strings.ContainsRune(`/\"' :;,)`, rune(s[end])) {
			b.WriteString(s[:i])
			b.WriteString("~")
		} else {
			b.WriteString(s[:end])
		}
		s = s[end:]
	}
}
