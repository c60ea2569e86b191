package docker

import (
	"encoding/json"
	"maps"
	"os"
	"path/filepath"

	"github.com/llenergymeasure/llem/pkg/protocol"
)

// ContainerHubCache is where the host's Hugging Face hub cache is mounted
// in a container (HF_HUB_CACHE points there): models and datasets already
// downloaded on the host are used, and what a container downloads stays
// for the next run, as vLLM's and TensorRT-LLM's own docs do it
// (`-v ~/.cache/huggingface:/root/.cache/huggingface`). A fixed path, not
// the image's HF_HOME, so it does not depend on the image's user.
const ContainerHubCache = "/llem/hf-hub"

// hubMounts are the binds and variables that give a container the host's
// hub cache (hubCache, read-write; "" for none) and a run's local model
// directory (model, when it is an absolute path to a directory on this
// machine: mounted read-only at the same path, so the argv and the run
// spec name it unchanged).
func hubMounts(hubCache, model string) (binds []string, env map[string]string) {
	env = map[string]string{}
	if hubCache != "" {
		binds = append(binds, hubCache+":"+ContainerHubCache)
		env["HF_HUB_CACHE"] = ContainerHubCache
	}
	if filepath.IsAbs(model) {
		if fi, err := os.Stat(model); err == nil && fi.IsDir() {
			binds = append(binds, model+":"+model+":ro")
		}
	}
	return binds, env
}

// specModel is the model of a run spec's config ("" if it has none).
func specModel(spec protocol.RunSpec) string {
	var c struct {
		Model string `json:"model"`
	}
	_ = json.Unmarshal(spec.Config, &c)
	return c.Model
}

// mergeEnv is a copy of env with extra's variables set over it.
func mergeEnv(env, extra map[string]string) map[string]string {
	out := make(map[string]string, len(env)+len(extra))
	maps.Copy(out, env)
	maps.Copy(out, extra)
	return out
}
