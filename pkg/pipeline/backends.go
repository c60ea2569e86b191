package pipeline

// The backends compiled into llem: one blank import each. Importing a
// backend's package runs its init, which registers it with pkg/backend
// (backend.Register); nothing else in llem names the set. A new backend
// adds its line here.
import (
	_ "github.com/llenergymeasure/llem/pkg/backend/native"
	_ "github.com/llenergymeasure/llem/pkg/backend/pytorch"
	_ "github.com/llenergymeasure/llem/pkg/backend/tensorrt"
	_ "github.com/llenergymeasure/llem/pkg/backend/vllm"
)
