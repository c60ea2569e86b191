package server

import (
	"bytes"
	"embed"
	"encoding/json"
	"fmt"
	"html/template"
	"math"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"

	"github.com/llenergymeasure/llem/pkg/archive/store"
	studyreport "github.com/llenergymeasure/llem/pkg/report"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// The browse page: server-rendered with html/template (every value from a
// record is escaped by the template engine), no scripts, a content security
// policy that allows none, labelled form controls, table headers with
// scope, a skip link, and keyset pagination so a page costs the same on
// 100k records as on ten.

//go:embed templates/*.tmpl
var templateFS embed.FS

// pages are parsed on first use, so commands other than the server do not
// pay for them at start-up.
var pages = sync.OnceValue(func() *template.Template {
	return template.Must(template.New("").Funcs(template.FuncMap{
		"jfmt":  jfmt,
		"ci":    ciText,
		"query": func(v url.Values) template.URL { return template.URL(v.Encode()) },
		"with1": func(v url.Values, k, val string) template.URL {
			c := url.Values{}
			for kk, vv := range v {
				c[kk] = vv
			}
			c.Set(k, val)
			return template.URL(c.Encode())
		},
		"meaning": studyreport.FlagMeaning,
		"date":    func(t interface{ Format(string) string }) string { return t.Format("2006-01-02 15:04 UTC") },
		"short":   func(s string) string { return s[:min(len(s), 12)] },
		"dict": func(kv ...any) map[string]any {
			m := map[string]any{}
			for i := 0; i+1 < len(kv); i += 2 {
				m[kv[i].(string)] = kv[i+1]
			}
			return m
		},
	}).ParseFS(templateFS, "templates/*.tmpl"))
})

const browseCSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:; font-src data:; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"

// browseAuth checks read access for a page; a browser without credentials
// is asked for them (HTTP Basic: any user name, the token as password).
func (s *Server) browseAuth(w http.ResponseWriter, r *http.Request) bool {
	e := s.auth(r, store.ScopeRead)
	if e == nil {
		return true
	}
	logOf(r).code = e.Code
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Basic realm="llem archive: any user name, your token as password", charset="UTF-8"`)
	}
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())+1))
	}
	s.render(w, r, e.Status, "error", map[string]any{"Title": http.StatusText(e.Status), "Error": e})
	return false
}

func (s *Server) render(w http.ResponseWriter, r *http.Request, status int, name string, data map[string]any) {
	data["Version"] = s.opt.Version
	data["Path"] = r.URL.Path
	var buf bytes.Buffer
	if err := pages().ExecuteTemplate(&buf, name, data); err != nil {
		s.log.Error("render", "template", name, "err", err)
		http.Error(w, "internal error rendering the page", http.StatusInternalServerError)
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", browseCSP)
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	w.Write(buf.Bytes())
}

func (s *Server) pageError(w http.ResponseWriter, r *http.Request, e *apiError) {
	logOf(r).code = e.Code
	s.render(w, r, e.Status, "error", map[string]any{"Title": http.StatusText(e.Status), "Error": e})
}

// filterForm is the search form's state.
type filterForm struct {
	store.Filter
	FromText, ToText string
	Facets           store.Facets
	// Query is the filter as query parameters, for links.
	Query url.Values
}

func (s *Server) form(r *http.Request) (filterForm, *apiError) {
	f, e := parseFilter(r)
	if e != nil {
		return filterForm{}, e
	}
	facets, err := s.facetValues(r.Context())
	if err != nil {
		return filterForm{}, storeError(err)
	}
	q := url.Values{}
	for _, k := range []string{"model", "backend", "gpu", "precision", "llem_version", "from", "to", "verdict", "status", "study", "run_id", "config_hash"} {
		if v := r.URL.Query().Get(k); v != "" {
			q.Set(k, v)
		}
	}
	return filterForm{Filter: f, FromText: r.URL.Query().Get("from"), ToText: r.URL.Query().Get("to"), Facets: facets, Query: q}, nil
}

func (s *Server) browseRecords(w http.ResponseWriter, r *http.Request) {
	if !s.browseAuth(w, r) {
		return
	}
	form, e := s.form(r)
	if e != nil {
		s.pageError(w, r, e)
		return
	}
	cursor, e := intParam(r, "cursor", 0, 0, 1<<62)
	if e != nil {
		s.pageError(w, r, e)
		return
	}
	const perPage = 50
	rows, next, err := s.store.List(r.Context(), form.Filter, int64(cursor), perPage)
	if err != nil {
		s.pageError(w, r, storeError(err))
		return
	}
	total, err := s.store.Count(r.Context(), form.Filter)
	if err != nil {
		s.pageError(w, r, storeError(err))
		return
	}
	data := map[string]any{"Title": "Records", "Form": form, "Rows": rows, "Total": total, "First": cursor == 0}
	if next > 0 {
		data["Next"] = strconv.FormatInt(next, 10)
	}
	s.render(w, r, http.StatusOK, "records", data)
}

// configRow is one row of the per-configuration table.
type configRow struct {
	configStats
	Label                      string
	EPT, TPS, TTFT, Power, E2E *stats.MetricStats
	Flags                      []string
	Query                      url.Values
}

func (s *Server) browseConfigs(w http.ResponseWriter, r *http.Request) {
	if !s.browseAuth(w, r) {
		return
	}
	form, e := s.form(r)
	if e != nil {
		s.pageError(w, r, e)
		return
	}
	agg, _, e := s.aggregate(r)
	if e != nil {
		s.pageError(w, r, e)
		return
	}
	var rows []configRow
	for _, c := range agg.Configs {
		row := configRow{configStats: c, Query: url.Values{"config_hash": {c.ConfigHash}, "gpu": {c.GPU}}}
		if c.Stats != nil {
			row.Label = c.Stats.Label()
			row.EPT = c.Stats.Metric("energy_per_output_token_j")
			row.TPS = c.Stats.Metric("output_tokens_per_sec")
			row.TTFT = c.Stats.Metric("ttft_p50_ms")
			row.Power = c.Stats.Metric("mean_power_w")
			row.Flags = c.Stats.Flags
		}
		rows = append(rows, row)
	}
	offset := agg.Offset
	data := map[string]any{"Title": "Configurations", "Form": form, "Agg": agg, "Rows": rows,
		"IncludeInconsistent": r.URL.Query().Get("include_inconsistent") == "true"}
	if offset+len(rows) < agg.Total {
		data["NextOffset"] = strconv.Itoa(offset + len(rows))
	}
	if offset > 0 {
		data["PrevOffset"] = strconv.Itoa(max(0, offset-20))
	}
	m := agg.Methodology
	data["Method"] = fmt.Sprintf("Values are the %s; brackets are the %.0f%% %s bootstrap confidence interval (%d resamples, seed %d), the statistics of llem results show. Records the archive found inconsistent are left out unless included.",
		m.Statistic, m.ConfidenceLevel*100, strings.ToUpper(m.CIMethod), m.Resamples, m.Seed)
	s.render(w, r, http.StatusOK, "configs", data)
}

// kvPair is one line of a provenance list.
type kvPair struct{ K, V string }

func (s *Server) browseRecord(w http.ResponseWriter, r *http.Request) {
	if !s.browseAuth(w, r) {
		return
	}
	sha := r.PathValue("sha256")
	if !shaPattern().MatchString(sha) {
		s.pageError(w, r, fail(http.StatusBadRequest, "bad_parameter", "%q is not a record hash (64 lowercase hex digits)", short(sha)))
		return
	}
	st, err := s.store.Get(r.Context(), sha)
	if err == store.ErrNotFound {
		s.pageError(w, r, fail(http.StatusNotFound, "not_found", "no record %s in this archive", sha))
		return
	}
	if err != nil {
		s.pageError(w, r, storeError(err))
		return
	}
	var rec result.Record
	json.Unmarshal(st.Record, &rec)
	pretty := func(raw []byte) string {
		var b bytes.Buffer
		if json.Indent(&b, raw, "", "  ") != nil {
			return string(raw)
		}
		return b.String()
	}
	ident := []kvPair{{"record sha256", st.SHA256}, {"study", st.Study}, {"study hash", st.StudyHash}, {"run", st.RunID},
		{"config hash", st.ConfigHash}, {"cycle", strconv.Itoa(st.Cycle)}, {"attempt", strconv.Itoa(st.Attempt)},
		{"model", st.Model}, {"backend", st.Backend}, {"precision", st.Precision}, {"status", st.Status}}
	prov := []kvPair{{"measured by llem", st.LlemVersion + " (" + st.LlemCommit + ")"}, {"hardware fingerprint", st.Fingerprint}, {"GPU", st.GPU},
		{"measured at", st.StartedAt.Format("2006-01-02 15:04:05 UTC")}, {"received at", st.ReceivedAt.Format("2006-01-02 15:04:05 UTC")},
		{"push", st.PushID}, {"pushed by llem", st.Client}}
	var flags []kvPair
	for _, f := range st.Flags {
		m := studyreport.FlagMeaning(f)
		if m == "" {
			m = "(no description in this llem version; see the record's warnings)"
		}
		flags = append(flags, kvPair{f, m})
	}
	data := map[string]any{"Title": "Record " + st.SHA256[:12], "Row": st.Row, "Ident": ident, "Prov": prov, "Flags": flags,
		"Warnings": rec.Warnings, "Environment": pretty(rec.Environment), "Config": pretty(rec.Config), "Record": pretty(st.Record),
		"Energy": energyFacts(&rec)}
	s.render(w, r, http.StatusOK, "record", data)
}

func energyFacts(r *result.Record) []kvPair {
	var out []kvPair
	add := func(k string, v *float64, unit string) {
		if v != nil {
			out = append(out, kvPair{k, jfmt(*v) + " " + unit})
		}
	}
	out = append(out, kvPair{"sensor / method", r.Energy.Sensor + " / " + r.Energy.Method})
	add("raw energy", r.Energy.RawJ, "J")
	add("baseline-adjusted energy", r.Energy.BaselineAdjustedJ, "J")
	add("mean power", r.Energy.MeanPowerW, "W")
	add("energy per output token", r.Efficiency.EnergyPerOutputTokenJ, "J")
	out = append(out, kvPair{"window", jfmt(r.Timing.WindowS) + " s"},
		kvPair{"tokens in / out", fmt.Sprintf("%d / %d (%d requests)", r.Throughput.InputTokens, r.Throughput.OutputTokens, r.Throughput.Requests)})
	for _, p := range r.Energy.Phases {
		out = append(out, kvPair{"phase " + p.Name, fmt.Sprintf("%s s, %s J (%.1f%%)", jfmt(p.DurationS), jfmt(p.EnergyJ), 100*p.Share)})
	}
	return out
}

// browseReport renders llem results report's page (pkg/report: the same
// per-configuration table and figures) for the selected configurations:
// one page of the configuration table, at most MaxGroupRecords records.
func (s *Server) browseReport(w http.ResponseWriter, r *http.Request) {
	if !s.browseAuth(w, r) {
		return
	}
	agg, recs, e := s.aggregate(r)
	if e != nil {
		s.pageError(w, r, e)
		return
	}
	if len(recs) == 0 {
		s.pageError(w, r, fail(http.StatusNotFound, "no_records", "no record matches this selection"))
		return
	}
	// Group the selection per configuration and GPU as one "study" each
	// GPU, so the report compares GPUs as it compares studies. Timeseries
	// files stay with whoever measured: the copies drop the path.
	byGPU := map[string][]*result.Record{}
	var gpus []string
	for _, a := range recs {
		g := a.GPU
		if _, ok := byGPU[g]; !ok {
			gpus = append(gpus, g)
		}
		c := *a.Rec
		c.Timeseries = ""
		byGPU[g] = append(byGPU[g], &c)
	}
	sort.Strings(gpus)
	var studies []*studyreport.Study
	for _, g := range gpus {
		rs := byGPU[g]
		st := &studyreport.Study{Dir: "archive", Records: rs, Stats: stats.Summarise(rs, stats.SummaryOptions{Bootstrap: s.opt.Stats})}
		st.Manifest.Study = g
		st.Manifest.Status = "archived"
		st.Manifest.StartedAt = rs[0].Timing.StartedAt
		st.Manifest.LlemVersion = rs[0].Llem.Version
		st.Manifest.Counts.Total, st.Manifest.Counts.Done = len(rs), len(rs)
		studies = append(studies, st)
	}
	rep, err := studyreport.Build(studies, studyreport.Options{MaxTimelines: -1, Level: agg.Methodology.ConfidenceLevel})
	if err != nil {
		s.pageError(w, r, fail(http.StatusInternalServerError, "report", "building the report: %v", err))
		return
	}
	var buf bytes.Buffer
	if err := rep.WriteHTML(&buf, "llem archive "+s.opt.Version); err != nil {
		s.pageError(w, r, fail(http.StatusInternalServerError, "report", "rendering the report: %v", err))
		return
	}
	h := w.Header()
	h.Set("Content-Type", "text/html; charset=utf-8")
	h.Set("Content-Security-Policy", browseCSP)
	w.Write(buf.Bytes())
}

// jfmt prints a number with 4 significant digits.
func jfmt(v float64) string {
	if math.IsNaN(v) || math.IsInf(v, 0) {
		return "–"
	}
	return strconv.FormatFloat(v, 'g', 4, 64)
}

// ciText is "mean [lo, hi]" of a metric, or "–".
func ciText(m *stats.MetricStats) string {
	if m == nil || m.N == 0 {
		return "–"
	}
	s := jfmt(m.Mean)
	if m.CI != nil && m.CI.Method != stats.MethodNone && !math.IsNaN(m.CI.Lower) {
		s += " [" + jfmt(m.CI.Lower) + ", " + jfmt(m.CI.Upper) + "]"
	}
	return s
}
