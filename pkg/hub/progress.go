package hub

import (
	"fmt"
	"io"
	"os"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"
	"golang.org/x/term"
)

// progress reports file downloads: file wraps a response body and returns
// done, to call with the download's outcome; close ends the report.
type progress interface {
	file(name string, size int64, body io.Reader) (io.Reader, func(error))
	close()
}

// newProgress picks the report for w: bars on a terminal, lines otherwise,
// nothing for nil.
func newProgress(w io.Writer, r Repo) progress {
	switch {
	case w == nil:
		return noProgress{}
	case isTerminal(w):
		return &barProgress{w: w, p: mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(150*time.Millisecond)), repo: r}
	}
	return &lineProgress{w: w, repo: r}
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}

type noProgress struct{}

func (noProgress) file(_ string, _ int64, body io.Reader) (io.Reader, func(error)) {
	return body, func(error) {}
}
func (noProgress) close() {}

// lineProgress writes a line when a file starts and one when it ends, for
// logs and pipes.
type lineProgress struct {
	w    io.Writer
	repo Repo
}

func (l *lineProgress) file(name string, size int64, body io.Reader) (io.Reader, func(error)) {
	fmt.Fprintf(l.w, "llem: downloading %s: %s (%s)\n", l.repo, name, byteSize(size))
	start := time.Now()
	cr := &countReader{r: body}
	return cr, func(err error) {
		if err != nil {
			fmt.Fprintf(l.w, "llem: download of %s failed after %s\n", name, byteSize(cr.n))
			return
		}
		fmt.Fprintf(l.w, "llem: downloaded %s (%s in %s)\n", name, byteSize(cr.n), time.Since(start).Round(10*time.Millisecond))
	}
}

func (l *lineProgress) close() {}

type countReader struct {
	r io.Reader
	n int64
}

func (c *countReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	return n, err
}

// barProgress draws one bar per file (mpb, through its ProxyReader).
type barProgress struct {
	w    io.Writer
	p    *mpb.Progress
	repo Repo
	once sync.Once
}

func (b *barProgress) file(name string, size int64, body io.Reader) (io.Reader, func(error)) {
	// Before the first bar: nothing else draws yet.
	b.once.Do(func() { fmt.Fprintf(b.w, "llem: downloading %s\n", b.repo) })
	total := size
	if total < 0 {
		total = 0 // unknown: mpb grows it as bytes arrive
	}
	bar := b.p.AddBar(total,
		mpb.PrependDecorators(decor.Name("  "+name+" ", decor.WCSyncSpaceR), decor.CountersKibiByte("% .1f / % .1f", decor.WCSyncSpace)),
		mpb.AppendDecorators(decor.Percentage(decor.WCSyncSpace), decor.EwmaSpeed(decor.SizeB1024(0), "% .1f", 30, decor.WCSyncSpace)))
	pr, err := bar.ProxyReader(body)
	if err != nil {
		return body, func(error) {}
	}
	return pr, func(err error) {
		pr.Close()
		if err != nil {
			bar.Abort(false)
			return
		}
		bar.SetTotal(-1, true) // complete, also when the size was unknown
	}
}

func (b *barProgress) close() { b.p.Wait() }

// byteSize formats n bytes for a progress line ("unknown size" for < 0).
func byteSize(n int64) string {
	switch {
	case n < 0:
		return "unknown size"
	case n < 1<<10:
		return fmt.Sprintf("%d B", n)
	case n < 1<<20:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	case n < 1<<30:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	}
	return fmt.Sprintf("%.2f GiB", float64(n)/(1<<30))
}
