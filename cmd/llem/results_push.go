package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/redact"
	"github.com/llenergymeasure/llem/pkg/share"
)

// resultsPushCmd is `llem results push`: share a study's records with an
// llem archive or the Hugging Face Hub, after showing exactly what goes.
type resultsPushCmd struct {
	Path    string `arg:"" name:"DIR|FILE" help:"A study directory, or one record file of it (records/<run>/cycle-N.json)." type:"path" predictor:"path"`
	To      string `help:"Archive URL (default: sharing.url of the user config), or hf://datasets/OWNER/NAME[@branch] for the Hugging Face Hub. The token comes from LLEM_API_KEY / sharing.api_key (HF_TOKEN / sharing.hf_token for the Hub), never from a flag."`
	Yes     bool   `short:"y" help:"Push without asking; needed when stdin is not a terminal (scripts)."`
	Batch   int    `help:"Records per request." default:"100"`
	Private bool   `help:"hf://: create the Hub dataset private when it does not exist yet."`
	License string `help:"hf://: licence identifier for the dataset card." default:"cc-by-4.0"`
}

func (c *resultsPushCmd) Run(ctx context.Context, stdio *IO, ucfg *UserConfig) error {
	uc, err := ucfg.Load()
	if err != nil {
		return err
	}
	to := c.To
	if to == "" {
		to = uc.Sharing.URL
	}
	if to == "" {
		return errs.BadInput(errors.New("push: no archive given"), "give --to URL, or set sharing.url in the user config (llem env shows where it is); --to hf://datasets/OWNER/NAME pushes to the Hugging Face Hub")
	}
	if c.Batch < 1 {
		return errs.BadInput(fmt.Errorf("--batch %d: must be at least 1", c.Batch), "the default is 100")
	}
	if strings.HasPrefix(to, "hf://") {
		return c.pushHF(ctx, stdio, to, uc)
	}
	base, err := share.ParseArchiveURL(to)
	if err != nil {
		return err
	}
	token := uc.Sharing.APIKey // LLEM_API_KEY applied by userconfig
	if token == "" {
		return errs.BadInput(errors.New("push: no archive token"), "set LLEM_API_KEY, or sharing.api_key in the user config ("+uc.Path+"); the archive's operator makes tokens with llem archive token create")
	}
	p, err := share.Collect(c.Path, share.LocalIdentity())
	if err != nil {
		return err
	}
	describePush(stdio.Stdout, p, redact.URL(base))
	fmt.Fprintln(stdio.Stdout, "not uploaded: timeseries, the manifest, the study file, model weights, prompts and outputs")
	if err := confirm(stdio, c.Yes, fmt.Sprintf("Push %d record(s) to %s?", len(p.Items), redact.URL(base))); err != nil {
		return err
	}
	prog := newPushProgress(stdio.Stderr, len(p.Items))
	client := &share.Client{Base: base, Token: token, Batch: c.Batch, Progress: prog.update}
	res, err := client.Push(ctx, p.Items)
	prog.close()
	if err != nil {
		if res != nil && len(res.Accepted) > 0 {
			fmt.Fprintf(stdio.Stderr, "llem: %d record(s) were stored before the push stopped; push again to send the rest\n", len(res.Accepted))
		}
		return err
	}
	return reportPush(stdio.Stdout, p, res)
}

// describePush prints what will leave the machine, before asking.
func describePush(w io.Writer, p *share.Push, dest string) {
	fmt.Fprintf(w, "study %q (%s): %d record(s) to push to %s\n", p.Study, p.Dir, len(p.Items), dest)
	fmt.Fprintln(w, "uploaded: each record's result fields (config, timing, energy, throughput, latency, flags, ...) and these environment fields:")
	fmt.Fprintf(w, "  %s\n", strings.Join(p.EnvKept, ", "))
	if len(p.EnvRemoved) > 0 {
		fmt.Fprintln(w, "removed before upload:")
		for _, f := range p.EnvRemoved {
			fmt.Fprintf(w, "  %s: %s\n", f, share.RemovedReason(f))
		}
	}
	if p.Rewritten > 0 {
		fmt.Fprintf(w, "rewritten: %d text value(s) naming your home directory (now ~), user name (<user>) or host name (<host>)\n", p.Rewritten)
	}
	for _, s := range p.Skipped {
		fmt.Fprintf(w, "skipped: %s (the manifest does not vouch for it)\n", s)
	}
}

// confirm asks on a terminal; without one it refuses unless --yes.
func confirm(stdio *IO, yes bool, question string) error {
	if yes {
		return nil
	}
	if !isTerminal(stdio.Stdin) {
		return errs.BadInput(errors.New("push: not confirmed: stdin is not a terminal"), "read what will be uploaded above and add --yes to push from a script")
	}
	ok, err := askYes(stdio.Stdin, stdio.Stderr, question)
	if err != nil {
		return err
	}
	if !ok {
		return errs.BadInput(errors.New("push: cancelled, nothing was uploaded"), "")
	}
	return nil
}

// askYes writes question and reads one answer line: y or yes is yes.
func askYes(r io.Reader, w io.Writer, question string) (bool, error) {
	fmt.Fprintf(w, "%s [y/N] ", question)
	line, err := bufio.NewReader(r).ReadString('\n')
	if err != nil && line == "" {
		if errors.Is(err, io.EOF) {
			return false, nil
		}
		return false, err
	}
	switch strings.ToLower(strings.TrimSpace(line)) {
	case "y", "yes":
		return true, nil
	}
	return false, nil
}

// reportPush prints what the archive did; rejected records make the
// command fail (exit 1) after everything was reported.
func reportPush(w io.Writer, p *share.Push, res *share.Result) error {
	byHash := map[string]share.Item{}
	for _, it := range p.Items {
		byHash[it.SHA256] = it
	}
	dup, flagged := 0, 0
	for _, a := range res.Accepted {
		if a.Duplicate {
			dup++
		}
		if a.Verdict != "" && a.Verdict != "consistent" {
			flagged++
		}
	}
	fmt.Fprintf(w, "accepted: %d record(s) (%d new, %d already stored)\n", len(res.Accepted)+len(res.AlreadyStored),
		len(res.Accepted)-dup, dup+len(res.AlreadyStored))
	if flagged > 0 {
		fmt.Fprintf(w, "stored with a verdict other than consistent: %d\n", flagged)
		for _, a := range res.Accepted {
			if a.Verdict != "" && a.Verdict != "consistent" {
				fmt.Fprintf(w, "  run %s cycle %d: %s (%s)\n", a.RunID, a.Cycle, a.Verdict, strings.Join(a.Checks, "; "))
			}
		}
	}
	fmt.Fprintf(w, "rejected: %d record(s)\n", len(res.Rejected))
	for _, r := range res.Rejected {
		where := r.SHA256
		if it, ok := byHash[r.SHA256]; ok {
			where = it.Path
		}
		fmt.Fprintf(w, "  %s: %s: %s\n", where, r.Code, r.Reason)
	}
	if len(res.Rejected) > 0 {
		return &printedError{errs.WithExitCode(fmt.Errorf("%d record(s) rejected", len(res.Rejected)), errs.ExitFailure)}
	}
	return nil
}

// pushProgress shows records sent: a bar on a terminal, a line per batch
// otherwise.
type pushProgress struct {
	w     io.Writer
	p     *mpb.Progress
	bar   *mpb.Bar
	total int
	last  int
}

func newPushProgress(w io.Writer, total int) *pushProgress {
	pp := &pushProgress{w: w, total: total, last: -1}
	if isTerminal(w) {
		pp.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(30), mpb.WithRefreshRate(150*time.Millisecond))
		pp.bar = pp.p.AddBar(int64(total), mpb.PrependDecorators(decor.Name("push "), decor.CountersNoUnit("%d/%d records")),
			mpb.AppendDecorators(decor.Percentage()))
	}
	return pp
}

func (pp *pushProgress) update(done, total int) {
	if pp.bar != nil {
		pp.bar.SetCurrent(int64(done))
		return
	}
	if done != pp.last {
		fmt.Fprintf(pp.w, "llem: pushed %d/%d records\n", done, total)
		pp.last = done
	}
}

func (pp *pushProgress) close() {
	if pp.p != nil {
		if !pp.bar.Completed() {
			pp.bar.Abort(false)
		}
		pp.p.Wait()
	}
}
