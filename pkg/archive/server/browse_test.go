package server_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/llenergymeasure/llem/pkg/archive/archivetest"
	"github.com/llenergymeasure/llem/pkg/archive/server"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
	"github.com/llenergymeasure/llem/pkg/envinfo"
	"github.com/llenergymeasure/llem/pkg/report/reporttest"
)

// Payloads that would run script or change the page if a field were
// rendered unescaped, or change a query if it were spliced into SQL.
const (
	xssScript = `<script>window.__pwned=1</script>`
	xssAttr   = `"><img src=x onerror="window.__pwned=1" data-xss=1>`
	sqlInject = `' OR 1=1; DROP TABLE records; --`
)

// hostileRecords carries the payloads in every field the browse page
// renders: model, backend, precision, study, GPU name, llem version and
// commit, flags, warnings, config, CPU and OS of the snapshot.
func hostileRecords(t *testing.T) []wire.PushedRecord {
	var out []wire.PushedRecord
	for c := 1; c <= 3; c++ {
		r := archivetest.Record(archivetest.Spec{Model: xssScript + sqlInject, Backend: xssAttr, Precision: sqlInject, Study: xssAttr + xssScript, GPU: xssScript + " H100", Cycle: c})
		r.Flags = []string{xssAttr, sqlInject}
		r.Warnings = []string{xssScript}
		var snap envinfo.Snapshot
		if err := json.Unmarshal(r.Environment, &snap); err != nil {
			t.Fatal(err)
		}
		r.Llem.Version = "0.9.0" + xssAttr
		r.Llem.Commit = "abc" + xssScript
		snap.CPU.Model = "EPYC " + xssAttr
		snap.OS.Name = sqlInject
		snap.Llem.Version, snap.Llem.Commit = r.Llem.Version, r.Llem.Commit
		snap.Fingerprint = envinfo.Fingerprint(snap) // as llem computes it
		r.Environment = mustJSON(t, snap)
		out = append(out, archivetest.Push(r))
	}
	return out
}

func TestBrowseInChromium(t *testing.T) {
	bin := reporttest.Chromium(t)
	a := sqliteArchive(t, server.Options{PublicRead: true})
	recs := hostileRecords(t)
	recs = append(recs, records(3, archivetest.Spec{})...)
	req := archivetest.Request("p-browse", recs...)
	req.Client.Version = xssScript
	r := a.do(t, "POST", wire.PushPath, a.Write, mustJSON(t, req))
	var pr wire.PushResponse
	json.Unmarshal(r.Body, &pr)
	if r.Status != 200 || len(pr.Accepted) != 6 {
		t.Fatalf("push: %d %s", r.Status, r.Body)
	}
	hostile := pr.Accepted[0].SHA256

	opts := append(chromedp.DefaultExecAllocatorOptions[:], chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU,
		chromedp.Headless, chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	ctx, cancel3 := context.WithTimeout(ctx, 90*time.Second)
	defer cancel3()

	type facts struct {
		Scripts, Injected, Unlabelled, HeadersWithoutScope, Tables int
		Pwned                                                      bool
		Body, Title                                                string
	}
	const inspect = `JSON.stringify({
	  scripts: document.querySelectorAll('script').length,
	  injected: document.querySelectorAll('[data-xss], img[src="x"]').length,
	  pwned: window.__pwned === 1,
	  unlabelled: Array.from(document.querySelectorAll('select, input:not([type=hidden]), textarea')).filter(e => e.labels.length === 0).length,
	  headersWithoutScope: Array.from(document.querySelectorAll('main table th')).filter(th => !th.hasAttribute('scope')).length,
	  tables: document.querySelectorAll('table').length,
	  body: document.body.innerText, title: document.title})`
	open := func(path string) facts {
		t.Helper()
		if err := chromedp.Do(ctx, chromedp.Navigate(a.URL+path), chromedp.WaitReady("body")); err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		js, err := chromedp.Run(ctx, chromedp.Evaluate[string](inspect))
		if err != nil {
			t.Fatalf("%s: %v", path, err)
		}
		var f facts
		if err := json.Unmarshal([]byte(js), &f); err != nil {
			t.Fatal(err)
		}
		if f.Scripts != 0 || f.Injected != 0 || f.Pwned {
			t.Fatalf("%s: markup from a record reached the page (scripts %d, injected elements %d, ran %v)", path, f.Scripts, f.Injected, f.Pwned)
		}
		return f
	}
	for _, path := range []string{"/", "/configs?include_inconsistent=true", "/records/" + hostile} {
		f := open(path)
		if f.Unlabelled != 0 || f.HeadersWithoutScope != 0 {
			t.Errorf("%s: %d form controls without a label, %d table headers without scope", path, f.Unlabelled, f.HeadersWithoutScope)
		}
		// The payloads are shown as text, exactly.
		for _, p := range []string{xssScript, sqlInject} {
			if !strings.Contains(f.Body, p) {
				t.Errorf("%s: the text %q is not shown as text", path, p)
			}
		}
	}
	f := open("/records/" + hostile)
	for _, want := range []string{"Provenance", "hardware fingerprint", "Environment snapshot", "Validity flags", "0.9.0" + xssAttr} {
		if !strings.Contains(f.Body, want) {
			t.Errorf("record page lacks %q", want)
		}
	}
	// The report of a selection: pkg/report's page and figures.
	f = open("/report?include_inconsistent=true")
	if !strings.Contains(f.Body, "Energy per output token") && !strings.Contains(f.Body, "energy per output token") {
		t.Errorf("report page lacks its figures:\n%.600s", f.Body)
	}
	// Keyboard: the first Tab reaches the skip link, Enter follows it.
	open("/")
	if err := chromedp.Do(ctx, chromedp.KeyEvent("\t")); err != nil {
		t.Fatal(err)
	}
	active, err := chromedp.Run(ctx, chromedp.Evaluate[string](`document.activeElement.textContent`))
	if err != nil || active != "Skip to content" {
		t.Errorf("first Tab focuses %q, want the skip link (%v)", active, err)
	}
	// The filter form: choose a GPU and submit it (the browser builds the
	// query from the form, no script of the page's).
	if _, err := chromedp.Run(ctx, chromedp.Evaluate[bool](`document.getElementById('f-gpu').value = 'NVIDIA H100 80GB HBM3'; document.querySelector('form.filters').requestSubmit(); true`)); err != nil {
		t.Fatal(err)
	}
	var body string
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); {
		body, err = chromedp.Run(ctx, chromedp.Evaluate[string](`document.readyState + "\n" + location.search + "\n" + document.body.innerText`))
		if err == nil && strings.HasPrefix(body, "complete") && strings.Contains(body, "gpu=NVIDIA+H100+80GB+HBM3") {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	if !strings.Contains(body, "gpu=NVIDIA+H100+80GB+HBM3") || !strings.Contains(body, "3 matching records") {
		t.Errorf("filtered page:\n%.400s", body)
	}
	if n := a.count(t); n != 6 {
		t.Fatalf("records after browsing: %d", n)
	}
}
