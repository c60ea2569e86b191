package execute

import (
	"context"
	"path/filepath"
	"time"

	"github.com/llenergymeasure/llem/pkg/dataset"
	"github.com/llenergymeasure/llem/pkg/protocol"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/study"
)

// slot runs the manifest entry at pos. It returns ok=false when ctx ended
// (the entry is back to pending) and an error only when the results
// directory cannot be written.
func (x *executor) slot(ctx context.Context, pos int) (ok bool, err error) {
	e := x.st.Entry(pos)
	run := x.runs[e.RunID]
	started := time.Now().UTC()
	if err := x.st.UpdateEntry(pos, func(en *result.Entry) {
		en.Status = result.EntryRunning
		en.Attempts++
		en.StartedAt = &started
		en.EndedAt = nil
		en.Error = ""
	}); err != nil {
		return false, err
	}
	e = x.st.Entry(pos)
	x.emit(Event{Kind: EventRun, Entry: e})

	rec := x.gpuSlot(ctx, run, e)
	x.lastEnd = time.Now()
	if ctx.Err() != nil && rec.Status == result.StatusFailed && rec.Error != nil && rec.Error.Kind == "interrupted" {
		// Interrupted: no record; the slot runs again on resume.
		err := x.st.UpdateEntry(pos, func(en *result.Entry) {
			en.Status = result.EntryPending
			en.StartedAt = nil
		})
		return false, err
	}
	if rec.Status == result.StatusOK {
		rec.FillCO2(x.opt.Carbon)
	}
	rel, werr := x.st.WriteRecord(rec)
	if werr != nil {
		return false, werr
	}
	ended := time.Now().UTC()
	if err := x.st.UpdateEntry(pos, func(en *result.Entry) {
		en.EndedAt = &ended
		en.Record = rel
		if rec.Status == result.StatusOK {
			en.Status = result.EntryDone
		} else {
			en.Status = result.EntryFailed
			en.Error = rec.Error.Kind + ": " + firstLine(rec.Error.Message)
		}
	}); err != nil {
		return false, err
	}
	x.addDone()
	if rec.Status != result.StatusOK {
		x.failed++
	}
	x.emit(Event{Kind: EventRunEnd, Entry: x.st.Entry(pos), Record: rec})
	return true, nil
}

// filePrompts resolves the prompts of a run whose dataset is a file (a
// JSONL path, relative to the study file's directory; the AI Energy Score
// set in the Hugging Face cache), so the worker gets them in its RunSpec.
// Synthetic datasets return nil: the worker builds them with the model's
// tokenizer. A run's file is read once, so all its cycles measure the same
// prompts even if the file changes mid-study.
func (x *executor) filePrompts(run study.Run) ([]protocol.Prompt, error) {
	if p, ok := x.prompts[run.ID]; ok {
		return p, nil
	}
	cfg, err := dataset.ParseConfig(run.ConfigJSON)
	if err != nil {
		return nil, err
	}
	switch cfg.Dataset.Source {
	case "jsonl", "aienergyscore":
	default:
		return nil, nil
	}
	base := ""
	if x.plan.Source != "" {
		base = filepath.Dir(x.plan.Source)
	}
	p, err := dataset.Build(cfg, dataset.Options{BaseDir: base})
	if err != nil {
		return nil, err
	}
	if x.prompts == nil {
		x.prompts = map[string][]protocol.Prompt{}
	}
	x.prompts[run.ID] = p
	return p, nil
}
