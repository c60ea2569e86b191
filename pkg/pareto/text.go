package pareto

import (
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
)

// statusText is a status for people ("possibly dominated").
func statusText(s Status) string { return strings.ReplaceAll(string(s), "_", " ") }

func axisLine(name string, a Axis, unit string) string {
	dir := "lower is better"
	if a.Higher {
		dir = "higher is better"
	}
	if unit != "" {
		return fmt.Sprintf("%s: %s (%s, %s)", name, a.Metric, unit, dir)
	}
	return fmt.Sprintf("%s: %s (%s)", name, a.Metric, dir)
}

func est(e Estimate) string {
	if !e.HasCI {
		return fmt.Sprintf("%.4g [no CI]", e.Mean)
	}
	return fmt.Sprintf("%.4g [%.4g, %.4g]", e.Mean, e.Lo, e.Hi)
}

// WriteText prints the result as a table: one line per configuration
// with both estimates, its status and who dominates it; then the frontier
// in x order, the configurations left out and the rule.
func WriteText(w io.Writer, r *Result) error {
	fmt.Fprintln(w, axisLine("x", r.X, r.XUnit))
	fmt.Fprintln(w, axisLine("y", r.Y, r.YUnit))
	fmt.Fprintln(w)
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	multi := len(r.Studies) > 1
	head := []string{"ID"}
	if multi {
		head = append(head, "STUDY")
	}
	level := fmt.Sprintf("%.0f%% CI", r.Level*100)
	head = append(head, "CONFIG", "N", "X MEAN ["+level+"]", "Y MEAN ["+level+"]", "STATUS", "BY")
	fmt.Fprintln(tw, strings.Join(head, "\t"))
	for _, e := range r.Entries {
		row := []string{e.ID}
		if multi {
			row = append(row, e.Study)
		}
		n := e.X.N
		if e.Y.N != n {
			n = min(e.X.N, e.Y.N)
		}
		var by []string
		switch e.Status {
		case Dominated:
			by = append(by, strings.Join(e.DominatedBy, ","))
		case PossiblyDominated:
			by = append(by, strings.Join(e.PossiblyDominatedBy, ",")+" (means only)")
		}
		if len(e.TiedWith) > 0 {
			by = append(by, "tie: "+strings.Join(e.TiedWith, ","))
		}
		if len(by) == 0 {
			by = []string{"-"}
		}
		row = append(row, e.Label, fmt.Sprint(n), est(e.X), est(e.Y), statusText(e.Status), strings.Join(by, "; "))
		fmt.Fprintln(tw, strings.Join(row, "\t"))
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	var front []string
	for _, e := range r.Frontier() {
		front = append(front, e.ID)
	}
	fmt.Fprintln(w)
	if len(r.Entries) == 0 {
		fmt.Fprintln(w, "frontier: none (no configuration has both metrics)")
	} else {
		fmt.Fprintf(w, "frontier (by x): %s\n", strings.Join(front, ", "))
	}
	for _, x := range r.Excluded {
		where := ""
		if x.Study != "" {
			where = x.Study + ": "
		}
		fmt.Fprintf(w, "left out: %s (%s%s): %s\n", x.ID, where, x.Label, x.Reason)
	}
	_, err := fmt.Fprintf(w, "rule: %s\n", r.Rule)
	return err
}
