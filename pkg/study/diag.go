package study

import (
	"fmt"
	"sort"
	"strings"

	"cuelang.org/go/cue/token"
)

// Diagnostic is one problem in a study, with where it is and what to do.
type Diagnostic struct {
	File string `json:"file,omitempty"`
	Line int    `json:"line,omitempty"`
	Col  int    `json:"col,omitempty"`
	// Path is the field path ("base.decoder.temperature"), or the grid
	// coordinates of a generated run.
	Path string `json:"path,omitempty"`
	Msg  string `json:"msg"`
	// own marks llem's own checks; CUE's errors at the same path are then
	// redundant (e.g. its bare "field not allowed" next to a did-you-mean).
	own bool
}

func (d Diagnostic) String() string {
	var b strings.Builder
	if d.File != "" {
		fmt.Fprintf(&b, "%s:%d:%d: ", d.File, d.Line, d.Col)
	}
	if d.Path != "" {
		b.WriteString(d.Path)
		b.WriteString(": ")
	}
	b.WriteString(d.Msg)
	return b.String()
}

// Error is every problem found in a study file, reported in one go.
type Error struct {
	Diags []Diagnostic
}

func (e *Error) Error() string {
	var b strings.Builder
	if len(e.Diags) == 1 {
		b.WriteString("invalid study: ")
		b.WriteString(e.Diags[0].String())
		return b.String()
	}
	fmt.Fprintf(&b, "invalid study: %d errors:", len(e.Diags))
	for _, d := range e.Diags {
		b.WriteString("\n  ")
		b.WriteString(d.String())
	}
	return b.String()
}

func diagAt(pos token.Pos, path, msg string) Diagnostic {
	d := Diagnostic{Path: path, Msg: msg}
	if pos.IsValid() {
		p := pos.Position()
		d.File, d.Line, d.Col = p.Filename, p.Line, p.Column
	}
	return d
}

// sortDiags orders diagnostics by position and drops exact duplicates.
func sortDiags(ds []Diagnostic) []Diagnostic {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i], ds[j]
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
	out := ds[:0]
	seen := map[string]bool{}
	owned := map[string]bool{}
	typed := map[string]bool{}
	for _, d := range ds {
		if d.own {
			owned[d.Path] = true
		} else {
			typed[d.Path] = true
		}
	}
	for _, d := range ds {
		k := d.String()
		if seen[k] {
			continue
		}
		if !d.own && owned[d.Path] && !removedValue(ds, d.Path) {
			continue
		}
		if d.own && typed[d.Path] && d.Msg == msgRequiredAbsent {
			// The file's check removed the bad value to go on; the run then
			// lacks it. The type error is the real one.
			continue
		}
		if isEnumFailure(d.Msg) && hasDeeper(ds, d.Path) {
			continue // CUE's echo of an element's error at its list or struct
		}
		seen[k] = true
		out = append(out, d)
	}
	return out
}

// msgRequiredAbsent is CUE's message for a required field without a value.
const msgRequiredAbsent = "field is required but not present"

// removedValue reports whether the only run diagnostic at path is
// msgRequiredAbsent (an artifact of the file's check removing the value).
func removedValue(ds []Diagnostic, path string) bool {
	for _, d := range ds {
		if d.own && d.Path == path && d.Msg != msgRequiredAbsent {
			return false
		}
	}
	return true
}

// hasDeeper reports whether a diagnostic of ds sits inside path
// (grid.dataset[0] inside grid.dataset).
func hasDeeper(ds []Diagnostic, path string) bool {
	for _, d := range ds {
		if path != "" && (strings.HasPrefix(d.Path, path+"[") || strings.HasPrefix(d.Path, path+".")) {
			return true
		}
	}
	return false
}

// suggest returns the candidate closest to name by edit distance, or ""
// when none is close enough to be a plausible typo.
func suggest(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		d := levenshtein(strings.ToLower(name), strings.ToLower(c))
		if d < bestD {
			best, bestD = c, d
		}
	}
	limit := max(2, len(name)/3)
	if best == "" || bestD > limit || bestD == len(name) {
		return ""
	}
	return best
}

func levenshtein(a, b string) int {
	ra, rb := []rune(a), []rune(b)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(rb)]
}
