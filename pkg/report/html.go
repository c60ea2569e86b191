package report

import (
	"bytes"
	_ "embed"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"html/template"
	"io"
	"math"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/pkg/report/figure"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

//go:embed report.html.tmpl
var pageTemplate string

// tmpl is parsed on first use, not at init: every llem command links this
// package, and only results report renders the page.
var tmpl = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("report").Parse(pageTemplate))
})

type kv struct{ K, V string }

type flagView struct {
	Code, Meaning string
	Records       int
}

type studyView struct {
	Name, Dir, Status string
	Facts, Design     []kv
	Hardware, Sensor  []kv
	Flags             []flagView
	Warnings          []string
	Problems          []string
}

type rowView struct {
	ID, Study, Label, Coords, N, Flags, Steady   string
	EPT, Throughput, PerRequest, Prefill, Decode cell
	TTFT, ITL, Power                             cell
}

// cell is a mean and, below it, its CI.
type cell struct{ Mean, CI string }

type figView struct {
	Name, Title, Caption string
	SVG                  template.HTML
	Problems             []string
}

type page struct {
	Title, Generated string
	FontCSS          template.CSS
	Multi            bool
	Studies          []studyView
	Dimensions       []string
	Rows             []rowView
	Method           string
	Figures          []figView
	Timelines        []figView
	TimelinesOmitted int
	Missing          []string
}

// WriteHTML writes the report as one self-contained HTML page: inline CSS,
// figures as inline SVG, the figures' font embedded once, and a content
// security policy that forbids every fetch, so the page shows the same
// offline and can never phone home.
// version names the llem build ("llem 0.1.0 (abc123)").
func (r *Report) WriteHTML(w io.Writer, version string) error {
	p := page{Generated: fmt.Sprintf("%s, %s", version, time.Now().UTC().Format("2006-01-02 15:04 UTC")), Multi: len(r.Studies) > 1}
	var names []string
	for _, s := range r.Studies {
		names = append(names, s.Name())
		p.Studies = append(p.Studies, studyViewOf(s))
	}
	p.Title = "llem report: " + strings.Join(names, " vs ")
	ttf, err := figure.FontTTF()
	if err != nil {
		return err
	}
	p.FontCSS = template.CSS(`@font-face{font-family:"Liberation Sans";src:url(data:font/ttf;base64,` + base64.StdEncoding.EncodeToString(ttf) + `) format("truetype")}`)
	for _, d := range r.Dimensions {
		p.Dimensions = append(p.Dimensions, dimName(d))
	}
	for _, c := range r.Configs {
		p.Rows = append(p.Rows, rowViewOf(c, r.Dimensions))
	}
	if len(r.Studies) > 0 {
		m := r.Studies[0].Stats.Methodology
		p.Method = fmt.Sprintf("Values are the %s (%s mode); brackets are the %.0f%% %s bootstrap confidence interval (%d resamples, seed %d). Steady state: coefficient of variation of J/output token below %.0f%% over the last %d cycles.",
			m.Statistic, strings.ReplaceAll(m.Mode, "_", " "), m.ConfidenceLevel*100, strings.ToUpper(m.CIMethod), m.Resamples, m.Seed, m.SteadyThreshold*100, m.SteadyWindow)
		if m.CIFallbacks > 0 {
			p.Method += fmt.Sprintf(" %d intervals fell back from BCa to the percentile method (too few or identical values).", m.CIFallbacks)
		}
	}
	for _, f := range r.Figures {
		v, err := r.figView(f)
		if err != nil {
			return err
		}
		p.Figures = append(p.Figures, v)
	}
	for _, f := range r.Timelines {
		v, err := r.figView(f)
		if err != nil {
			return err
		}
		p.Timelines = append(p.Timelines, v)
	}
	p.TimelinesOmitted = r.TimelinesOmitted
	p.Missing = r.Missing
	var buf bytes.Buffer
	if err := tmpl().Execute(&buf, p); err != nil {
		return fmt.Errorf("render report: %w", err)
	}
	_, err = w.Write(buf.Bytes())
	return err
}

// figView inlines f's SVG (without its XML prolog; the page supplies the
// font). vgsvg escapes every text it writes, so labels from the data cannot
// inject markup.
func (r *Report) figView(f *figure.Figure) (figView, error) {
	svg, err := f.SVG(false)
	if err != nil {
		return figView{}, err
	}
	s := string(svg)
	if i := strings.Index(s, "<svg"); i >= 0 {
		s = s[i:]
	}
	s = strings.Replace(s, "<svg ", `<svg class="plot" role="img" aria-label="`+html.EscapeString(f.Title)+`" `, 1)
	return figView{Name: f.Name, Title: f.Title, Caption: f.Caption, SVG: template.HTML(s), Problems: r.Problems[f.Name]}, nil
}

// WriteFigures writes every figure into dir as NAME.svg (fonts embedded)
// and NAME.png (print size, figure.DPI) and returns the paths written.
func (r *Report) WriteFigures(dir string) ([]string, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return nil, fmt.Errorf("create %s: %w", dir, err)
	}
	var paths []string
	for _, f := range append(append([]*figure.Figure{}, r.Figures...), r.Timelines...) {
		svg, err := f.SVG(true)
		if err != nil {
			return paths, err
		}
		png, err := f.PNG()
		if err != nil {
			return paths, err
		}
		for ext, data := range map[string][]byte{".svg": svg, ".png": png} {
			p := filepath.Join(dir, f.Name+ext)
			if err := os.WriteFile(p, data, 0o644); err != nil {
				return paths, fmt.Errorf("write %s: %w", p, err)
			}
			paths = append(paths, p)
		}
	}
	sort.Strings(paths)
	return paths, nil
}

func fmtCI(m *stats.MetricStats) cell {
	if m == nil || m.N == 0 {
		return cell{Mean: "–"}
	}
	c := cell{Mean: stats.Num(m.Mean)}
	if m.CI != nil && m.CI.Method != stats.MethodNone && !math.IsNaN(m.CI.Lower) {
		c.CI = fmt.Sprintf("[%s, %s]", stats.Num(m.CI.Lower), stats.Num(m.CI.Upper))
	}
	return c
}

func rowViewOf(c *Config, dims []string) rowView {
	var coords []string
	for _, k := range c.Coords {
		if k.Name != "study" && contains(dims, k.Name) {
			coords = append(coords, dimName(k.Name)+"="+k.Value)
		}
	}
	run := c.Run
	v := rowView{ID: c.ID, Study: c.Study.Name(), Label: c.Label, Coords: strings.Join(coords, ", "),
		N:   fmt.Sprintf("%d/%d", run.ValidCount, run.Cycles),
		EPT: fmtCI(run.Metric("energy_per_output_token_j")), Throughput: fmtCI(run.Metric("output_tokens_per_sec")),
		PerRequest: fmtCI(run.Metric("energy_per_request_j")),
		Prefill:    fmtCI(run.Metric("prefill_energy_j")), Decode: fmtCI(run.Metric("decode_energy_j")),
		TTFT: fmtCI(run.Metric("ttft_p50_ms")), ITL: fmtCI(run.Metric("itl_p50_ms")),
		Power: fmtCI(run.Metric("mean_power_w")), Flags: strings.Join(run.Flags, ", "), Steady: "not reached"}
	if c.SteadyAt > 0 {
		v.Steady = fmt.Sprintf("cycle %d", c.SteadyAt)
	}
	return v
}

func studyViewOf(s *Study) studyView {
	m := s.Manifest
	v := studyView{Name: s.Name(), Dir: s.Dir, Status: m.Status}
	v.Facts = append(v.Facts, kv{"status", m.Status}, kv{"started", m.StartedAt.UTC().Format(time.RFC3339)})
	if m.EndedAt != nil {
		v.Facts = append(v.Facts, kv{"ended", m.EndedAt.UTC().Format(time.RFC3339)},
			kv{"wall time", m.EndedAt.Sub(m.StartedAt).Round(time.Second).String()})
	}
	c := m.Counts
	v.Facts = append(v.Facts, kv{"run × cycle slots", fmt.Sprintf("%d total: %d done, %d failed, %d skipped, %d pending", c.Total, c.Done, c.Failed, c.Skipped, c.Pending)},
		kv{"configurations", fmt.Sprint(len(s.Stats.Runs))}, kv{"llem", m.LlemVersion}, kv{"study hash", m.StudyHash})
	if s.Summary != nil && s.Summary.TotalEnergyJ != nil {
		v.Facts = append(v.Facts, kv{"total measured energy", fmt.Sprintf("%.4g J (raw, done records)", *s.Summary.TotalEnergyJ)})
	}
	if s.Summary != nil && len(s.Summary.Execution) > 0 {
		var ex map[string]any
		if json.Unmarshal(s.Summary.Execution, &ex) == nil {
			keys := make([]string, 0, len(ex))
			for k := range ex {
				keys = append(keys, k)
			}
			sort.Strings(keys)
			for _, k := range keys {
				v.Design = append(v.Design, kv{strings.ReplaceAll(k, "_", " "), strings.Trim(fmt.Sprint(jsonValue(ex[k])), `"`)})
			}
		}
	}
	v.Hardware = hardware(s.Records)
	v.Sensor = sensors(s.Records)
	flags := map[string]int{}
	for _, r := range s.Records {
		for _, f := range r.Flags {
			flags[f]++
		}
	}
	codes := make([]string, 0, len(flags))
	for f := range flags {
		codes = append(codes, f)
	}
	sort.Strings(codes)
	for _, f := range codes {
		meaning := flagMeaning[f]
		if meaning == "" {
			meaning = "(no description in this llem version; see the records' warnings)"
		}
		v.Flags = append(v.Flags, flagView{Code: f, Meaning: meaning, Records: flags[f]})
	}
	v.Warnings = append(v.Warnings, s.Stats.Warnings...)
	for _, p := range s.Problems {
		v.Problems = append(v.Problems, fmt.Sprintf("%s: %s (%s)", p.Path, p.Kind, p.Detail))
	}
	return v
}

// hardware summarises the environment snapshot of the first record.
func hardware(recs []*result.Record) []kv {
	var env struct {
		GPU struct {
			Driver      string `json:"driver_version"`
			CUDA        string `json:"cuda_driver_version"`
			Unavailable string `json:"unavailable"`
			GPUs        []struct {
				Name   string  `json:"name"`
				LimitW float64 `json:"power_limit_w"`
				MIG    string  `json:"mig_mode"`
			} `json:"gpus"`
		} `json:"gpu"`
		CPU struct {
			Model      string `json:"model"`
			Sockets    int    `json:"sockets"`
			Cores      int    `json:"cores"`
			Threads    int    `json:"threads"`
			Hypervisor bool   `json:"hypervisor"`
		} `json:"cpu"`
		Memory int64 `json:"memory_bytes"`
		OS     struct {
			Name, Kernel, Arch string
		} `json:"os"`
		Container struct {
			Detected bool   `json:"detected"`
			Runtime  string `json:"runtime"`
		} `json:"container"`
	}
	for _, r := range recs {
		if len(r.Environment) > 0 && json.Unmarshal(r.Environment, &env) == nil {
			break
		}
	}
	var out []kv
	if len(env.GPU.GPUs) > 0 {
		count := map[string]int{}
		var order []string
		for _, g := range env.GPU.GPUs {
			d := g.Name
			if g.LimitW > 0 {
				d += fmt.Sprintf(" (power limit %.0f W)", g.LimitW)
			}
			if count[d] == 0 {
				order = append(order, d)
			}
			count[d]++
		}
		var parts []string
		for _, d := range order {
			parts = append(parts, fmt.Sprintf("%d × %s", count[d], d))
		}
		out = append(out, kv{"GPUs", strings.Join(parts, "; ")}, kv{"driver", strings.TrimSpace(env.GPU.Driver + " (CUDA " + env.GPU.CUDA + ")")})
	} else {
		g := "none"
		if env.GPU.Unavailable != "" {
			g = "none: " + env.GPU.Unavailable
		}
		out = append(out, kv{"GPUs", g})
	}
	cpu := env.CPU.Model
	if env.CPU.Cores > 0 {
		cpu += fmt.Sprintf(", %d socket(s), %d cores, %d threads", env.CPU.Sockets, env.CPU.Cores, env.CPU.Threads)
	}
	if env.CPU.Hypervisor {
		cpu += " (virtual machine)"
	}
	if cpu != "" {
		out = append(out, kv{"CPU", cpu})
	}
	if env.Memory > 0 {
		out = append(out, kv{"memory", fmt.Sprintf("%.1f GiB", float64(env.Memory)/(1<<30))})
	}
	if os := strings.TrimSpace(env.OS.Name + " " + env.OS.Kernel + " " + env.OS.Arch); os != "" {
		out = append(out, kv{"OS", os})
	}
	if env.Container.Detected {
		out = append(out, kv{"container", env.Container.Runtime})
	}
	return out
}

// sensors lists the distinct sensor, method, sampling interval and baseline
// of the records.
func sensors(recs []*result.Record) []kv {
	seen := map[string]map[string]bool{}
	var order []string
	add := func(k, v string) {
		if v == "" {
			return
		}
		if seen[k] == nil {
			seen[k] = map[string]bool{}
			order = append(order, k)
		}
		seen[k][v] = true
	}
	for _, r := range recs {
		if r.Status != result.StatusOK {
			continue
		}
		add("sensor", r.Energy.Sensor)
		add("energy method", r.Energy.Method)
		add("sampling interval", fmt.Sprintf("%g ms", r.Energy.SampleIntervalMs))
		if b := r.Energy.Baseline; b != nil {
			add("idle baseline", fmt.Sprintf("%s (%g s measurement)", b.Method, b.DurationS))
		} else {
			add("idle baseline", "none (baseline disabled or unavailable): only raw energy")
		}
		add("efficiency basis", r.Efficiency.Basis)
		add("phase split", r.PhaseSplitMethod)
		for _, d := range r.Energy.PerDevice {
			add("devices measured", fmt.Sprintf("%s (%s, %s)", d.Name, d.Kind, d.Method))
		}
	}
	var out []kv
	for _, k := range order {
		vs := make([]string, 0, len(seen[k]))
		for v := range seen[k] {
			vs = append(vs, v)
		}
		sort.Strings(vs)
		out = append(out, kv{k, strings.Join(vs, "; ")})
	}
	return out
}
