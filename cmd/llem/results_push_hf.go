package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/llenergymeasure/llem/exporters"
	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/hub"
	"github.com/llenergymeasure/llem/pkg/result"
	"github.com/llenergymeasure/llem/pkg/share"
	"github.com/llenergymeasure/llem/pkg/userconfig"
)

// pushHF pushes the hf-datasets export of the scrubbed records to a Hub
// dataset in one commit (pkg/hub's commit API).
func (c *resultsPushCmd) pushHF(ctx context.Context, stdio *IO, to string, uc *userconfig.Loaded) error {
	repo, err := hub.ParseDatasetURL(to)
	if err != nil {
		return err
	}
	client := hub.FromEnv() // HF_ENDPOINT, HF_TOKEN, HF_HUB_OFFLINE
	if client.Token == "" {
		client.Token = uc.Sharing.HFToken
	}
	if client.Token == "" {
		return errs.BadInput(errors.New("push: no Hugging Face token"), "set HF_TOKEN, or sharing.hf_token in the user config ("+uc.Path+"), to a token with write access (huggingface.co/settings/tokens)")
	}
	p, err := share.Collect(c.Path, share.LocalIdentity())
	if err != nil {
		return err
	}
	// The export is built from the scrubbed records, so the dataset holds
	// exactly what the archive push would send.
	st := *p.Loaded
	st.Problems = nil
	st.Records = make([]*result.Record, len(p.Items))
	for i, it := range p.Items {
		var r result.Record
		if err := json.Unmarshal(it.Record, &r); err != nil {
			return fmt.Errorf("push: %s: %w", it.Path, err)
		}
		st.Records[i] = &r
	}
	cc, err := carbonFlags{}.resolve(st.Carbon, uc)
	if err != nil {
		return err
	}
	tmp, err := os.MkdirTemp("", "llem-hf-push-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(tmp)
	out := filepath.Join(tmp, "dataset")
	format, err := exporters.Lookup("hf-datasets")
	if err != nil {
		return err
	}
	e, err := format.New(exporters.Params{Dest: out, License: c.License, Carbon: cc})
	if err != nil {
		return err
	}
	if err := e.Export(ctx, exporters.NewSet(&st)); err != nil {
		return err
	}
	var files []hub.CommitFile
	err = filepath.WalkDir(out, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(out, path)
		files = append(files, hub.CommitFile{Path: filepath.ToSlash(rel), Data: data})
		return nil
	})
	if err != nil {
		return err
	}
	dest := fmt.Sprintf("hf://datasets/%s@%s (%s)", repo.ID, repo.Revision, client.Endpoint)
	describePush(stdio.Stdout, p, dest)
	fmt.Fprintln(stdio.Stdout, "as the hf-datasets export (llem results export --format hf-datasets), one commit of:")
	for _, f := range files {
		fmt.Fprintf(stdio.Stdout, "  %s (%d bytes)\n", f.Path, len(f.Data))
	}
	fmt.Fprintln(stdio.Stdout, "not uploaded: the manifest, the study file, model weights, prompts and outputs")
	if err := confirm(stdio, c.Yes, fmt.Sprintf("Commit %d file(s) to hf://datasets/%s@%s?", len(files), repo.ID, repo.Revision)); err != nil {
		return err
	}
	if err := client.CreateRepo(ctx, repo, c.Private); err != nil {
		return err
	}
	info, err := client.Commit(ctx, repo, files, fmt.Sprintf("llem results push: study %s, %d record(s)", p.Study, len(p.Items)))
	if err != nil {
		return err
	}
	fmt.Fprintf(stdio.Stdout, "committed %d file(s) (%d record(s)) to hf://datasets/%s@%s: %s\n", len(files), len(p.Items), repo.ID, repo.Revision, info.URL)
	return nil
}
