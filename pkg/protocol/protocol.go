// Package protocol defines the protocol between the llem parent process (which
// owns all measurement) and a backend worker (which only runs inference and
// reports what happened, with CLOCK_MONOTONIC timestamps).
//
// Parent → worker: one RunSpec as JSON (on the worker's stdin).
// Worker → parent: JSON lines, one Event per line, each with "event" and "t_ns".
//
// The full specification, precise enough to write a worker in another
// language, is docs/worker-protocol.md.
package protocol

import "encoding/json"

// ProtocolVersion is bumped on any incompatible change to RunSpec or events.
const ProtocolVersion = 1

// RunSpec is what the parent sends to a worker: one run of one experiment.
type RunSpec struct {
	ProtocolVersion int    `json:"protocol_version"`
	RunID           string `json:"run_id"`
	Cycle           int    `json:"cycle"`
	// Config is the run's full effective experiment config (the JSON the
	// study expands to: model, backend, precision, dataset, decoder, the
	// backend's section with its extra: keys).
	Config json.RawMessage `json:"config"`
	// BackendArgs are the backend's own keyword arguments, built from the
	// schema's mapping attributes (e.g. {"engine": {"max_num_seqs": 64}}),
	// with extra: keys merged in untouched. Empty for the native backend.
	BackendArgs map[string]any `json:"backend_args,omitempty"`
	// Prompts, when set, are the dataset already resolved by the parent
	// (text or token IDs). When empty the worker builds the dataset itself
	// from Config.dataset.
	Prompts []Prompt `json:"prompts,omitempty"`
}

// Prompt is one input: text, or token IDs for random-weight models.
type Prompt struct {
	Text      string `json:"text,omitempty"`
	TokenIDs  []int  `json:"token_ids,omitempty"`
	MaxTokens int    `json:"max_tokens,omitempty"` // per-prompt output length; 0 = config's max_output_tokens
}

// Event kinds.
const (
	KindHello      = "hello"
	KindLoaded     = "loaded"
	KindWarmupDone = "warmup_done"
	KindPhase      = "phase"
	KindRequest    = "request"
	KindLog        = "log"
	KindDone       = "done"
	KindError      = "error"
)

// Hello is the first event: who the worker is.
type Hello struct {
	Backend         string            `json:"backend"`
	ProtocolVersion int               `json:"protocol_version"`
	Versions        map[string]string `json:"versions"` // e.g. {"torch": "2.11.0", "transformers": "5.17.0"}
	PID             int               `json:"pid,omitempty"`
}

// Loaded reports model facts once the model is in memory.
type Loaded struct {
	Model        string `json:"model"`
	Architecture string `json:"architecture,omitempty"` // e.g. "LlamaForCausalLM"
	Parameters   int64  `json:"parameters"`
	Layers       int    `json:"layers,omitempty"`
	DType        string `json:"dtype"`
	MemoryBytes  int64  `json:"memory_bytes,omitempty"` // bytes the weights (and any preallocated cache) occupy
	LoadTimeNs   int64  `json:"load_time_ns,omitempty"`
}

// WarmupDone marks the end of warmup; the measured window starts after it.
type WarmupDone struct {
	Prompts int `json:"prompts"`
}

// Phase is one prefill or decode interval of one batch. Workers emit a pair
// of Phase events per interval: State "start" then "end"; token counts are
// on the "end" event.
type Phase struct {
	Name         string `json:"name"`  // "prefill" | "decode"
	State        string `json:"state"` // "start" | "end"
	Batch        int    `json:"batch"` // batch index within the run, from 0
	BatchSize    int    `json:"batch_size"`
	InputTokens  int    `json:"input_tokens,omitempty"`  // prefill end: real prompt tokens, excluding padding
	OutputTokens int    `json:"output_tokens,omitempty"` // decode end (and prefill end: first tokens)
}

// Request reports one finished request.
type Request struct {
	Index        int     `json:"index"`
	Batch        int     `json:"batch"`
	InputTokens  int     `json:"input_tokens"`
	OutputTokens int     `json:"output_tokens"`
	StartNs      int64   `json:"start_ns"`
	TTFTNs       int64   `json:"ttft_ns"`
	EndNs        int64   `json:"end_ns"`
	ITLNs        []int64 `json:"itl_ns,omitempty"`        // inter-token latencies
	FinishReason string  `json:"finish_reason,omitempty"` // "eos" | "length" | "stop"
}

// Log is a human-readable message from the worker (not an error).
type Log struct {
	Level   string `json:"level"` // "debug" | "info" | "warn"
	Message string `json:"message"`
}

// Done is the last event of a successful run.
type Done struct {
	Requests     int `json:"requests"`
	InputTokens  int `json:"input_tokens"`
	OutputTokens int `json:"output_tokens"`
	// PhaseSplitMethod says how the phase events split prefill from decode:
	// PhaseSplitTimestamps (empty means the same) or PhaseSplitPrefillPass.
	PhaseSplitMethod string `json:"phase_split_method,omitempty"`
	// Memory is what the backend itself knows about its memory (optional:
	// absent when it knows nothing beyond what NVML sees).
	Memory *Memory `json:"memory,omitempty"`
}

// Memory is the backend's own account of its device memory over the
// measured requests, each field optional (0 = not known). The parent
// records it beside NVML's whole-device peak.
type Memory struct {
	// PeakAllocatedBytes is the allocator's peak of memory held by tensors
	// during the measured requests (torch.cuda.max_memory_allocated after
	// reset_peak_memory_stats at warmup_done), summed over devices.
	PeakAllocatedBytes int64 `json:"peak_allocated_bytes,omitempty"`
	// PeakReservedBytes is the allocator's peak reserved memory (cached
	// blocks included: torch.cuda.max_memory_reserved), summed over devices.
	PeakReservedBytes int64 `json:"peak_reserved_bytes,omitempty"`
	// KVCacheBytes is the KV cache: preallocated capacity for paged engines
	// (vLLM: num_gpu_blocks × block_size × bytes per token), the largest
	// batch's cache for engines that allocate per batch (native).
	KVCacheBytes int64 `json:"kv_cache_bytes,omitempty"`
	// WeightsBytes is the memory the weights occupy.
	WeightsBytes int64 `json:"weights_bytes,omitempty"`
	// Reporter names what was read, e.g. "torch.cuda", "vllm cache_config",
	// "tensorrt_llm kvCacheStats", "llem engine".
	Reporter string `json:"reporter"`
}

// How a worker's phase events split prefill from decode.
const (
	// PhaseSplitTimestamps: each batch's prefill and decode intervals were
	// timed directly (the end of the first forward pass is the boundary).
	PhaseSplitTimestamps = "timestamps"
	// PhaseSplitPrefillPass: continuous-batching engines (vLLM,
	// TensorRT-LLM) have no per-batch boundary. One batch: its prefill pair
	// brackets a separate max_tokens=1 pass over all prompts, its decode
	// pair the full generation, which prefills again. The parent measures
	// the full generation and attributes the prefill pass's energy and
	// time to prefill, the rest to decode.
	PhaseSplitPrefillPass = "prefill-pass"
)

// Error is the last event of a failed run.
type Error struct {
	Kind    string `json:"kind"` // one of the ErrKind* constants
	Message string `json:"message"`
	Hint    string `json:"hint,omitempty"`
}

// Error kinds. The parent maps "config" and "protocol" to bad input (exit 2),
// "interrupted" to 130 and every other kind to a failed run.
const (
	ErrKindConfig         = "config"          // the run spec or config is invalid for this worker
	ErrKindProtocol       = "protocol"        // protocol version mismatch or unreadable spec
	ErrKindModelNotFound  = "model_not_found" // no such local path, HF cache entry or preset
	ErrKindBadCheckpoint  = "bad_checkpoint"  // files present but unreadable or inconsistent
	ErrKindUnsupported    = "unsupported"     // architecture or feature this backend cannot run
	ErrKindOOM            = "oom"             // not enough (GPU or host) memory
	ErrKindMissingPackage = "missing_package" // a Python package is not installed
	ErrKindGated          = "gated"           // the model needs Hub authentication
	ErrKindDataset        = "dataset"         // the dataset could not be built or read
	ErrKindInterrupted    = "interrupted"     // SIGINT/SIGTERM before the run finished
	ErrKindInternal       = "internal"        // a bug or anything unclassified
	ErrKindServer         = "server"          // serving mode: the server failed to start, crashed or stopped answering
)

// ErrorKinds lists every valid Error.Kind.
var ErrorKinds = []string{
	ErrKindConfig, ErrKindProtocol, ErrKindModelNotFound, ErrKindBadCheckpoint,
	ErrKindUnsupported, ErrKindOOM, ErrKindMissingPackage, ErrKindGated,
	ErrKindDataset, ErrKindInterrupted, ErrKindInternal, ErrKindServer,
}

// Phase names and states.
const (
	PhasePrefill = "prefill"
	PhaseDecode  = "decode"
	StateStart   = "start"
	StateEnd     = "end"
)

// Event is one decoded line: the kind, its timestamp and exactly one payload.
type Event struct {
	Kind string `json:"event"`
	TNs  int64  `json:"t_ns"`

	Hello      *Hello
	Loaded     *Loaded
	WarmupDone *WarmupDone
	Phase      *Phase
	Request    *Request
	Log        *Log
	Done       *Done
	Error      *Error

	// Unknown holds the raw line of an event kind this llem does not know;
	// only a lenient Decoder returns such events.
	Unknown json.RawMessage
	// Warnings lists what a lenient Decoder tolerated on this line (unknown
	// fields, unknown kind); always empty from a strict one.
	Warnings []string
}
