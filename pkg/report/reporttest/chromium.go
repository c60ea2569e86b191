// Package reporttest opens llem's HTML report in a real headless Chromium
// (Debian's chromium package) through the DevTools protocol, for tests: it
// returns what the page's figures contain, every console error and every
// network request the page made, and a full-page screenshot.
//
// Without chromium on PATH (or $LLEM_CHROMIUM) a test using it is skipped,
// unless CI is set, where it fails: .ci/run installs chromium.
package reporttest

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"
)

// Chromium returns the browser's path or skips the test (fails under CI).
func Chromium(t testing.TB) string {
	t.Helper()
	for _, name := range []string{os.Getenv("LLEM_CHROMIUM"), "chromium", "chromium-browser"} {
		if name == "" {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI") != "" {
		t.Fatal("the report's browser tests need chromium in CI (apt-get install chromium; .ci/run installs it)")
	}
	t.Skip("chromium not found (apt-get install chromium, or set LLEM_CHROMIUM)")
	return ""
}

// Figure is what the page shows of one <figure class="llem-figure">.
type Figure struct {
	Name string `json:"name"`
	// Width and Height are the rendered SVG's size in CSS pixels.
	Width  float64 `json:"width"`
	Height float64 `json:"height"`
	// Paths and Texts count the SVG's path and text elements.
	Paths int `json:"paths"`
	Texts int `json:"texts"`
	// Text is the SVG's text, element by element.
	Text []string `json:"text"`
}

// Page is what a rendered report contains and did.
type Page struct {
	Title   string   `json:"title"`
	Figures []Figure `json:"figures"`
	// Scripts counts <script> elements (the report has none).
	Scripts int `json:"scripts"`
	// BodyText is the page's visible text.
	BodyText string `json:"body"`
	// ConsoleErrors are console errors, uncaught exceptions and browser
	// log entries of level error (CSP violations land there).
	ConsoleErrors []string `json:"-"`
	// Requests are the URLs the page requested other than itself.
	Requests []string `json:"-"`
	// Screenshot is a full-page PNG.
	Screenshot []byte `json:"-"`
}

// Open renders the HTML file at path in headless Chromium and inspects it.
func Open(t testing.TB, path string) *Page {
	t.Helper()
	bin := Chromium(t)
	abs, err := filepath.Abs(path)
	if err != nil {
		t.Fatal(err)
	}
	url := "file://" + abs
	opts := append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(bin), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Headless,
		chromedp.WindowSize(1280, 900), chromedp.UserDataDir(t.TempDir()))
	actx, cancel := chromedp.NewExecAllocator(context.Background(), opts...)
	defer cancel()
	ctx, cancel2 := chromedp.NewContext(actx)
	defer cancel2()
	ctx, cancel3 := context.WithTimeout(ctx, 60*time.Second)
	defer cancel3()

	p := &Page{}
	var mu sync.Mutex
	err = chromedp.Listen(ctx, func(ev any) {
		mu.Lock()
		defer mu.Unlock()
		switch e := ev.(type) {
		case *runtime.EventConsoleAPICalled:
			if e.Type == runtime.ConsoleAPICalledTypeError || e.Type == runtime.ConsoleAPICalledTypeAssert {
				var parts []string
				for _, a := range e.Args {
					parts = append(parts, string(a.Value))
				}
				p.ConsoleErrors = append(p.ConsoleErrors, "console: "+strings.Join(parts, " "))
			}
		case *runtime.EventExceptionThrown:
			p.ConsoleErrors = append(p.ConsoleErrors, "exception: "+e.ExceptionDetails.Text)
		case *log.EventEntryAdded:
			if e.Entry.Level == log.EntryLevelError {
				p.ConsoleErrors = append(p.ConsoleErrors, fmt.Sprintf("log %s: %s %s", e.Entry.Source, e.Entry.Text, e.Entry.URL))
			}
		case *network.EventRequestWillBeSent:
			if e.Request.URL != url && !strings.HasPrefix(e.Request.URL, "data:") {
				p.Requests = append(p.Requests, e.Request.URL)
			}
		}
	})
	if err != nil {
		t.Fatalf("chromium: %v", err)
	}
	step := func(what string, err error) {
		if err != nil {
			t.Fatalf("chromium on %s: %s: %v", path, what, err)
		}
	}
	_, err = chromedp.Call(ctx, log.Enable, cdp.Empty{})
	step("enable log", err)
	_, err = chromedp.Call(ctx, runtime.Enable, cdp.Empty{})
	step("enable runtime", err)
	_, err = chromedp.Call(ctx, network.Enable, network.EnableParams{})
	step("enable network", err)
	step("navigate", chromedp.Do(ctx, chromedp.Navigate(url), chromedp.WaitReady("body")))
	js, err := chromedp.Run(ctx, chromedp.Evaluate[string](inspectJS))
	step("inspect", err)
	p.Screenshot, err = chromedp.Run(ctx, chromedp.FullScreenshot(100))
	step("screenshot", err)
	if err := json.Unmarshal([]byte(js), p); err != nil {
		t.Fatalf("page facts: %v", err)
	}
	mu.Lock()
	defer mu.Unlock()
	return p
}

// inspectJS collects the facts of Page from the DOM (run by the test only;
// the report itself has no script).
const inspectJS = `JSON.stringify({
  title: document.title,
  scripts: document.querySelectorAll('script').length,
  body: document.body.innerText,
  figures: Array.from(document.querySelectorAll('figure.llem-figure')).map(f => {
    const s = f.querySelector('svg');
    const r = s ? s.getBoundingClientRect() : {width: 0, height: 0};
    return {name: f.dataset.figure, width: r.width, height: r.height,
      paths: s ? s.querySelectorAll('path').length : 0,
      texts: s ? s.querySelectorAll('text').length : 0,
      text: s ? Array.from(s.querySelectorAll('text')).map(t => t.textContent) : []};
  })
})`
