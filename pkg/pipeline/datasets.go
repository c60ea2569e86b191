package pipeline

import (
	"context"
	"io"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/dataset"
	"github.com/llenergymeasure/llem/pkg/study"
)

// FetchDatasets puts the Hugging Face Hub prompt sets that the plan's runs
// use (dataset source "aienergyscore") into the hub cache before the study
// starts, downloading with progress on progress (nil: silently). Each
// distinct repository, revision and split is fetched once; one already
// cached costs no request. Runs then read the cache only (dataset.Build),
// so no worker touches the network. A failure is the user's to fix
// (connect, HF_TOKEN, a manual download, another dataset): exit 2, before
// any results directory exists.
func FetchDatasets(ctx context.Context, plan *study.Plan, progress io.Writer) error {
	seen := map[string]bool{}
	for _, r := range plan.Runs {
		cfg, err := dataset.ParseConfig(r.ConfigJSON)
		if err != nil {
			return errs.BadInput(err, "")
		}
		if cfg.Dataset.Source != "aienergyscore" {
			continue
		}
		repo := cfg.Dataset.HubRepo()
		key := repo.ID + "@" + repo.Revision + ":" + cfg.Dataset.Split + ":" + cfg.Dataset.Field
		if seen[key] {
			continue
		}
		seen[key] = true
		if _, err := dataset.Fetch(ctx, cfg.Dataset, dataset.FetchOptions{Progress: progress}); err != nil {
			if ctx.Err() != nil {
				return ctx.Err() // Ctrl-C during a download: exit 130
			}
			return errs.BadInput(err, "")
		}
	}
	return nil
}
