package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/userconfig"
)

// initCmd writes the user config with every setting commented out at its
// default, so a new user sees what can be set and where.
type initCmd struct {
	Force bool   `name:"force" help:"Overwrite an existing config file."`
	Path  string `name:"path" help:"Write here instead of the config location (LLEM_CONFIG, else ~/.config/llenergymeasure/config.yaml)." type:"path"`
}

// configTemplate is the commented user config. Every key is one of
// pkg/userconfig's, commented out, so the file changes nothing until a
// line is uncommented; TestInitTemplateKeys decodes it uncommented.
const configTemplate = `# llem user config (written by llem init). Every line is commented out:
# uncomment what you want to change. Environment variables override this
# file, a study overrides both (llem --help lists the variables).

# Where llem eval writes study directories and llem results ls looks
# (LLEM_RESULTS_DIR). Relative to the working directory.
# results_dir: results

# energy:
#   # Sensor when a study says auto: auto, nvml, rapl, estimate, none
#   # (LLEM_ENERGY_SENSOR).
#   sensor: auto
#   # CPU TDP in watts for the estimate sensor (no GPU, no RAPL): the
#   # machine's CPUs together at full load. 0 uses llem's TDP table; set it
#   # when llem env says your CPU is not in the table (LLEM_CPU_TDP_WATTS).
#   cpu_tdp_watts: 0

# carbon:
#   # Grid region for carbon intensity, e.g. GBR, DEU, USA (LLEM_CARBON_REGION).
#   region: GBR
#   # Or the intensity itself, gCO2e/kWh (LLEM_CARBON_INTENSITY).
#   intensity_g_per_kwh: 200
#   # Datacentre power usage effectiveness (LLEM_PUE).
#   pue: 1.0

# Python interpreter for the pytorch, vllm and tensorrt workers run
# locally (LLEM_PYTHON); default: the active venv/conda env, else PATH.
# python: /path/to/venv/bin/python

# Where each backend's worker runs: local or docker (LLEM_RUNNER_<BACKEND>).
# runners:
#   vllm: docker
#   tensorrt: docker

# Docker image per backend (LLEM_IMAGE_<BACKEND>).
# images:
#   vllm: ghcr.io/llenergymeasure/llem-vllm:latest

# llem results push (docs/sharing.md). The tokens are secrets: keep this
# file private (llem init writes it mode 0600) and out of repositories.
# sharing:
#   # Default archive for llem results push when --to is not given.
#   url: https://archive.example.org
#   # Archive token with write scope (LLEM_API_KEY overrides it).
#   api_key: llem_...
#   # Hugging Face token for --to hf://datasets/... (HF_TOKEN overrides it).
#   hf_token: hf_...
`

func (c *initCmd) Run(stdio *IO) error {
	path := c.Path
	if path == "" {
		path = userconfig.Path(os.Getenv)
	}
	if _, err := os.Stat(path); err == nil && !c.Force {
		return errs.BadInput(fmt.Errorf("%s already exists", path), "edit it, or pass --force to replace it with the commented template")
	} else if err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("check %s: %w", path, err)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return fmt.Errorf("create config directory: %w", err)
	}
	if err := os.WriteFile(path, []byte(configTemplate), 0o600); err != nil { // it may hold tokens (sharing)
		return fmt.Errorf("write user config: %w", err)
	}
	_, err := fmt.Fprintf(stdio.Stdout, "wrote %s (every setting commented out; llem env shows what is in effect)\n", path)
	return err
}
