package main

import (
	"strings"

	"github.com/agnivade/levenshtein"
)

// didYouMean returns ` (did you mean "x"?)`-style text for the candidate
// closest to name, or "" when none is a plausible typo (at most a third
// of the name's letters, and at least 2, differ).
func didYouMean(name string, candidates []string) string {
	best, bestD := "", 1<<30
	for _, c := range candidates {
		if d := levenshtein.ComputeDistance(strings.ToLower(name), strings.ToLower(c)); d < bestD {
			best, bestD = c, d
		}
	}
	if best == "" || bestD > max(2, len(name)/3) || bestD >= len(name) {
		return ""
	}
	return best
}
