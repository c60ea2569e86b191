package params

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// DefaultText renders what happens when the field is left as is: the
// concrete default llem sends, or the backend's own default.
func (p Param) DefaultText() string {
	if p.Default != nil {
		b, err := json.Marshal(p.Default)
		if err != nil {
			return fmt.Sprint(p.Default)
		}
		return string(b)
	}
	if p.BackendDefault != "" {
		return "backend default (" + p.BackendDefault + ")"
	}
	return "backend default"
}

// TypeText renders the type with enum options or bounds.
func (p Param) TypeText() string {
	if p.Type == "string" && p.Bounds == `!=""` {
		return "non-empty string"
	}
	switch {
	case p.Type == "enum":
		return p.Schema
	case p.Bounds != "" && p.Type == "list":
		return "list, " + p.Bounds
	case p.Bounds != "" && p.Type == "map":
		return p.Bounds
	case p.Bounds != "":
		return p.Type + " " + p.Bounds
	}
	return p.Type
}

// CoverageText is the one-line coverage summary of a report. The target
// note ("met" / "NOT met") judges the measured figure (first-class over the
// energy-relevant knobs of the pinned upstream snapshot) wherever a snapshot
// exists; only a backend without one falls back to the curated figure.
func (r *Report) CoverageText() string {
	c := r.Coverage
	m, measured, err := MeasuredCoverage(r)
	measured = measured && err == nil
	var s string
	if measured {
		s = fmt.Sprintf("measured coverage %.1f%% = %d of %d energy-relevant upstream knobs of %s %s first-class", 100*m.Ratio, m.Covered, m.Relevant, m.Library, m.Version)
	} else {
		s = fmt.Sprintf("coverage %.1f%% = %d first-class / (%d first-class + %d known missing), not measured (no upstream snapshot)", 100*c.Ratio, c.FirstClass, c.FirstClass, c.Missing)
	}
	if c.Target > 0 {
		ratio := c.Ratio
		if measured {
			ratio = m.Ratio
		}
		mark := "met"
		if ratio < c.Target {
			mark = "NOT met"
		}
		s += fmt.Sprintf("; target ≥ %.0f%% %s", 100*c.Target, mark)
	}
	if measured {
		s += fmt.Sprintf(" (curated figure: %.1f%% = %d first-class / (%d + %d known missing))", 100*c.Ratio, c.FirstClass, c.FirstClass, c.Missing)
	}
	return s
}

// WriteText prints reports for a terminal: one block per param.
func WriteText(w io.Writer, reports []*Report) error {
	ew := &errWriter{w: w}
	for i, r := range reports {
		if i > 0 {
			ew.printf("\n")
		}
		ew.printf("%s: %d params, %s\n", r.Backend, len(r.Params), r.CoverageText())
		ew.printf("extra: targets %s\n\n", strings.Join(r.ExtraTargets, ", "))
		for _, p := range r.Params {
			ew.printf("  %s  %s\n", p.Path, p.TypeText())
			ew.printf("      default: %s   maps to: @%s(%s)\n", p.DefaultText(), p.Mapping.Backend, p.Mapping)
			if p.Doc != "" {
				for _, line := range wrap(p.Doc, 90) {
					ew.printf("      %s\n", line)
				}
			}
		}
		if len(r.Rules) > 0 {
			ew.printf("\n  cross-field rules (checked when a study is loaded):\n")
			for _, m := range r.Rules {
				ew.printf("  - %s\n", m)
			}
		}
		if len(r.SharedArgs) > 0 {
			ew.printf("\n  filled from shared experiment fields (not settable here or in extra:):\n")
			for _, sh := range r.SharedArgs {
				ew.printf("  - %s ← %s\n", sh.Arg, sh.From)
			}
		}
		if len(r.KnownMissing) > 0 {
			ew.printf("\n  known missing (impactful, not first-class):\n")
			for _, m := range r.KnownMissing {
				ew.printf("  - %s (%s): %s\n", m.Name, m.Arg, m.Why)
			}
		}
	}
	return ew.err
}

// WriteJSON prints reports as one JSON document {"backends": [...]}; a
// backend with an upstream snapshot also carries its measured coverage
// ("measured_coverage", see Measured).
func WriteJSON(w io.Writer, reports []*Report) error {
	type withMeasured struct {
		*Report
		Measured *Measured `json:"measured_coverage,omitempty"`
	}
	out := make([]withMeasured, len(reports))
	for i, r := range reports {
		out[i].Report = r
		m, ok, err := MeasuredCoverage(r)
		if err != nil {
			return err
		}
		if ok {
			out[i].Measured = &m
		}
	}
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	return enc.Encode(struct {
		Backends []withMeasured `json:"backends"`
	}{out})
}

// WriteMarkdown prints the parameter reference (docs/params.md).
func WriteMarkdown(w io.Writer, reports []*Report) error {
	ew := &errWriter{w: w}
	ew.printf("%s", mdIntro)
	ew.printf("| Backend | Measured coverage | Upstream | First-class | Known missing | Curated coverage | Target |\n|---|---|---|---|---|---|---|\n")
	for _, r := range reports {
		c := r.Coverage
		target := "—"
		if c.Target > 0 {
			target = fmt.Sprintf("≥ %.0f%%", 100*c.Target)
		}
		measured, upstream := "not measured", "—"
		if m, ok, err := MeasuredCoverage(r); err == nil && ok {
			measured = fmt.Sprintf("%.1f%% (%d of %d)", 100*m.Ratio, m.Covered, m.Relevant)
			upstream = m.Library + " " + m.Version
		}
		ew.printf("| [%s](#%s) | %s | %s | %d | %d | %.1f%% | %s |\n", r.Backend, r.Backend, measured, upstream, c.FirstClass, c.Missing, 100*c.Ratio, target)
	}
	for _, r := range reports {
		ew.printf("\n## %s\n\n", r.Backend)
		ew.printf("%s.\n\n", upperFirst(r.CoverageText()))
		ew.printf("`extra:` targets: %s.\n\n", codeList(r.ExtraTargets))
		ew.printf("| Param | Type | Default | Maps to | Description |\n|---|---|---|---|---|\n")
		for _, p := range r.Params {
			ew.printf("| `%s` | %s | %s | `%s` | %s |\n", strings.TrimPrefix(p.Path, r.Backend+"."), mdCode(p.TypeText()), mdCell(p.DefaultText()), p.Mapping, mdCell(p.Doc))
		}
		if len(r.Rules) > 0 {
			ew.printf("\n### Cross-field rules\n\nChecked when a study is loaded; a run that breaks one is skipped with this message.\n\n")
			for _, m := range r.Rules {
				ew.printf("- %s\n", m)
			}
		}
		if len(r.SharedArgs) > 0 {
			ew.printf("\n### Filled from shared fields\n\n")
			ew.printf("llem sets these %s arguments from the experiment's shared fields; set the field, not the argument (`extra:` may not set them either).\n\n", r.Backend)
			ew.printf("| Backend argument | Set with |\n|---|---|\n")
			for _, sh := range r.SharedArgs {
				ew.printf("| `%s` | `%s` |\n", sh.Arg, sh.From)
			}
		}
		ew.printf("\n### Known missing\n\n")
		if len(r.KnownMissing) == 0 {
			ew.printf("None: every option the backend has is first-class.\n")
			continue
		}
		ew.printf("| Name | Backend argument | Why not first-class |\n|---|---|---|\n")
		for _, m := range r.KnownMissing {
			ew.printf("| %s | `%s` | %s |\n", mdCell(m.Name), m.Arg, mdCell(m.Why))
		}
	}
	return ew.err
}

const mdIntro = `# Backend parameters

<!-- Generated by ` + "`go generate ./pkg/params`" + ` (llem params --markdown) from schema/*.cue; do not edit. -->

Every backend section of an experiment (` + "`pytorch:`, `vllm:`, `tensorrt:`, `native:`" + `) is defined in
` + "`schema/<backend>.cue`" + `, the single source of truth. ` + "`llem params [BACKEND]`" + ` prints the same
reference in the terminal (` + "`--json`" + ` for tools).

**Defaults.** A value in the Default column is what llem always sends. "backend default (…)"
means the field is optional: left out, nothing is sent and the backend's own default (shown
in parentheses, from its documentation) applies.

**Mapping.** Each param carries an attribute ` + "`@<backend>(TARGET.ARG)`" + `: TARGET is the call
or object receiving the value, ARG the backend's own keyword argument, dotted when the
argument is itself a config object (` + "`from_pretrained.quantization_config.load_in_4bit`" + ` is
` + "`from_pretrained(quantization_config=BitsAndBytesConfig(load_in_4bit=…))`" + `). llem builds
backend arguments from these attributes only (` + "`params.BackendArgs`" + `).

| Backend | Targets |
|---|---|
| pytorch | ` + "`from_pretrained`" + ` (AutoModelForCausalLM.from_pretrained / from_config), ` + "`generate`" + ` (model.generate / GenerationConfig), ` + "`compile`" + ` (torch.compile), ` + "`tokenizer`" + ` (tokenizer attributes), ` + "`torch`" + ` (process-wide torch settings), ` + "`llem`" + ` (the harness) |
| vllm | ` + "`engine`" + ` (vllm.LLM / EngineArgs), ` + "`sampling`" + ` (SamplingParams), ` + "`beam_search`" + ` (BeamSearchParams), ` + "`env`" + ` (environment variables set before vLLM loads) |
| tensorrt | ` + "`llm`" + ` (tensorrt_llm.LLM / TorchLlmArgs, the PyTorch runtime, and its config objects), ` + "`sampling`" + ` (SamplingParams), ` + "`llem`" + ` (the harness) |
| native | ` + "`engine`" + ` (pkg/engine options), ` + "`worker`" + ` (the native worker loop) |

**` + "`extra:`" + `** forwards arguments the schema does not cover, untouched, grouped by target:
` + "`vllm: extra: engine: {enable_sleep_mode: true}`" + `. Values must be plain JSON data. A key that a
first-class param maps to is an error naming that param (` + "`vllm.extra.engine.max_num_seqs: shadows\nfirst-class vllm.engine.max_num_seqs; set that instead`" + `), and so is replacing a config object
that first-class params fill (set keys inside it instead).

**Shared fields.** Model, precision, random_seed, max_output_tokens and ` + "`decoder:`" + ` are set once
per experiment; llem fills the matching backend arguments from them (listed per backend below,
from ` + "`#PyTorchSharedArgs`" + ` etc.), and ` + "`extra:`" + ` may not set those either.

**Cross-field rules** are CUE constraints in the same files; the messages below are read from
them, and a run that breaks one is reported with its grid coordinates and skipped.

**Measured coverage** = energy-relevant upstream knobs a first-class param maps to / all
energy-relevant upstream knobs of the pinned library version. The knobs are extracted from the
upstream source (` + "`tools/upstream/snapshots`" + `, by ` + "`tools/upstream/extract.py`" + `); each carries a
reviewed verdict in ` + "`tools/upstream/relevance/<backend>.json`" + ` (irrelevant ones say why: logging, paths,
multimodal inputs, ...), so the denominator comes from upstream. Targets are judged on it.
**Curated coverage** = first-class / (first-class + known impactful missing), the known-missing
lists living in the schema next to the params (` + "`#PyTorchKnownMissing`" + ` etc.).

`

func codeList(xs []string) string {
	q := make([]string, len(xs))
	for i, x := range xs {
		q[i] = "`" + x + "`"
	}
	return strings.Join(q, ", ")
}

func mdCell(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "|", `\|`), "\n", " ")
}

func mdCode(s string) string {
	return "`" + strings.ReplaceAll(s, "|", `\|`) + "`"
}

func upperFirst(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}

func wrap(s string, width int) []string {
	var lines []string
	var cur strings.Builder
	for _, w := range strings.Fields(s) {
		if cur.Len() > 0 && cur.Len()+1+len(w) > width {
			lines = append(lines, cur.String())
			cur.Reset()
		}
		if cur.Len() > 0 {
			cur.WriteByte(' ')
		}
		cur.WriteString(w)
	}
	if cur.Len() > 0 {
		lines = append(lines, cur.String())
	}
	return lines
}

// errWriter keeps the first write error so rendering code stays linear.
type errWriter struct {
	w   io.Writer
	err error
}

func (e *errWriter) printf(format string, args ...any) {
	if e.err != nil {
		return
	}
	_, e.err = fmt.Fprintf(e.w, format, args...)
}
