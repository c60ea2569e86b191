package serve

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/engine"
	"github.com/llenergymeasure/llem/pkg/tokenizer"
)

// RandomPrefix names a random-weight preset model, as in studies.
const RandomPrefix = "random:"

// LoadOptions pick how the model is held.
type LoadOptions struct {
	Threads int    // kernel goroutines (0: GOMAXPROCS)
	Storage string // "fp32" or "bf16" ("": fp32)
	Seed    int64  // weights of a random preset
}

// Load builds the model the way the native worker does: random:<preset>
// gets seeded random weights and no tokenizer; anything else is a local
// checkpoint directory or a Hugging Face cache entry, with its
// tokenizer.json when it has one.
func Load(model string, o LoadOptions) (*engine.Model, *tokenizer.Tokenizer, error) {
	storage := o.Storage
	if storage == "" {
		storage = "fp32"
	}
	opts := []engine.Option{engine.WithThreads(o.Threads), engine.WithStorage(storage)}
	if name, ok := strings.CutPrefix(model, RandomPrefix); ok {
		c, ok := engine.Preset(name)
		if !ok {
			return nil, nil, errs.BadInput(fmt.Errorf("no native preset %q", model), "presets: "+RandomPrefix+strings.Join(engine.Presets(), ", "+RandomPrefix))
		}
		m, err := engine.NewRandom(c, o.Seed, opts...)
		return m, nil, err
	}
	dir, err := engine.ResolveModelDir(model)
	if err != nil {
		return nil, nil, err
	}
	m, err := engine.Load(dir, opts...)
	if err != nil {
		return nil, nil, err
	}
	p := filepath.Join(dir, "tokenizer.json")
	if _, err := os.Stat(p); errors.Is(err, os.ErrNotExist) {
		return m, nil, nil
	}
	tok, err := tokenizer.LoadFile(p)
	if err != nil {
		return nil, nil, errs.WithHint(fmt.Errorf("load tokenizer: %w", err), "llem serve needs a tokenizer the native engine supports")
	}
	return m, tok, nil
}
