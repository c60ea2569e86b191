package loadgen

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/pkg/clock"
)

// APIs the generator speaks.
const (
	Completions = "completions"      // POST /v1/completions
	Chat        = "chat/completions" // POST /v1/chat/completions
)

// LateThreshold is the schedule error above which a send counts as late:
// the generator fell behind its schedule.
const LateThreshold = time.Millisecond

// BehindShare is the share of late sends above which a run is reported as
// behind its schedule (Lag.Behind): the 99th-percentile lag exceeds
// LateThreshold.
const BehindShare = 0.01

// Prompt is one request's input.
type Prompt struct {
	Text      string // the prompt (completions) or the user message (chat)
	Tokens    []int  // token ids instead of Text (completions only)
	MaxTokens int    // max_tokens; 0 leaves it to the server
}

// Config is one load run.
type Config struct {
	// BaseURL is the server, e.g. http://127.0.0.1:8000 (the /v1/ path is
	// added).
	BaseURL string
	// API is Completions (default) or Chat.
	API   string
	Model string
	// Prompts are used in turn (request i gets Prompts[i % len]).
	Prompts []Prompt
	// Requests is how many requests to send; Duration, when Requests is 0,
	// sends every arrival scheduled before it (closed loop: starts requests
	// until it has passed).
	Requests int
	Duration time.Duration
	// Arrivals makes the load open-loop. Without it the load is closed-loop
	// at Concurrency.
	Arrivals *Arrivals
	// Concurrency is the closed-loop concurrency; with Arrivals it caps the
	// requests in flight (0: no cap), and a send held back by the cap is
	// late, its latency still counted from its scheduled time.
	Concurrency int
	// Timeout bounds one request from its send to its last byte (0: none).
	Timeout time.Duration
	// NoStream asks for whole responses instead of SSE streams (no TTFT or
	// ITL then).
	NoStream bool
	// IgnoreEOS sends vLLM's ignore_eos so every request generates
	// MaxTokens tokens.
	IgnoreEOS bool
	// Client is the HTTP client (default: a NewClient for this Run, whose
	// connections are closed when it returns).
	Client *http.Client
}

// Result is what one request saw. Offsets are from the start of the run on
// the monotonic clock; latencies are from the request's scheduled time.
type Result struct {
	Index     int           // position in the schedule
	Prompt    int           // index into Config.Prompts
	Scheduled time.Duration // when it was due
	// Dispatched is when the dispatcher handed it to a sender (open loop:
	// Dispatched-Scheduled is the generator's own timing error); Sent is when
	// the request actually started (Sent-Scheduled is the schedule error
	// the server saw, including any wait for a processor).
	Dispatched time.Duration
	Sent       time.Duration
	// Tokens are the client arrival times of the streamed chunks that
	// carried text, in order (one per token for servers that stream token
	// by token, as vLLM and llem serve do).
	Tokens       []time.Duration
	End          time.Duration // last byte (or the failure)
	PromptTokens int           // from the server's usage, when it reports one
	OutputTokens int           // usage's completion_tokens, else len(Tokens)
	Status       int           // HTTP status (0 when no response came)
	Err          string        // empty when the request succeeded
	TimedOut     bool
}

// OK reports whether the request completed.
func (r *Result) OK() bool { return r.Err == "" }

// TTFT is the time to first token from the scheduled time (0 without one).
func (r *Result) TTFT() time.Duration {
	if len(r.Tokens) == 0 {
		return 0
	}
	return r.Tokens[0] - r.Scheduled
}

// E2E is the request's latency from its scheduled time to its last byte.
func (r *Result) E2E() time.Duration { return r.End - r.Scheduled }

// ITLs are the gaps between consecutive streamed tokens.
func (r *Result) ITLs() []time.Duration {
	if len(r.Tokens) < 2 {
		return nil
	}
	out := make([]time.Duration, len(r.Tokens)-1)
	for i := range out {
		out[i] = r.Tokens[i+1] - r.Tokens[i]
	}
	return out
}

// TPOT is the time per output token after the first, as vLLM defines it:
// (E2E - TTFT) / (output tokens - 1); 0 for fewer than two tokens.
func (r *Result) TPOT() time.Duration {
	if r.OutputTokens < 2 || len(r.Tokens) == 0 {
		return 0
	}
	return (r.End - r.Tokens[0]) / time.Duration(r.OutputTokens-1)
}

// Lag summarises how far sends fell behind their schedule.
type Lag struct {
	P50, P99, Max time.Duration
	// DispatchP99 is the 99th percentile of the dispatcher's own error
	// (Dispatched-Scheduled), without the wait for a sender to run.
	DispatchP99 time.Duration
	// Late counts sends more than LateThreshold behind schedule.
	Late int
	// Behind is true when more than BehindShare of the sends were late:
	// the offered load was lower than asked, and the report says so. One
	// late send in a long run is scheduler jitter (the H200 host's 16
	// cores, 14 of them serving, had 1–2 ms p99 lags at 4 req/s, a 250 ms
	// mean gap), not a lower load.
	Behind bool
}

// Report is one load run.
type Report struct {
	// Start is the wall-clock time of offset 0 (it carries a monotonic
	// reading, so Start.Add(offset) places results on the same clock as
	// energy samples taken in this process).
	Start time.Time
	// StartNs is offset 0 on CLOCK_MONOTONIC (pkg/clock), the clock of
	// llem's energy sampler in any process: StartNs + offset places a
	// result on the sampler's timeline.
	StartNs  int64
	Open     bool // open-loop (Arrivals) or closed-loop
	Elapsed  time.Duration
	Results  []Result
	Lag      Lag
	Failed   int // requests with an error (timeouts included)
	TimedOut int
}

// Run sends the load and waits for every request to end (or ctx). A
// cancelled ctx stops sending; requests in flight end with an error.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	bodies, err := cfg.bodies()
	if err != nil {
		return nil, err
	}
	var sched []time.Duration
	if cfg.Arrivals != nil {
		if sched, err = cfg.Arrivals.Schedule(cfg.Requests, cfg.Duration); err != nil {
			return nil, err
		}
	} else if cfg.Concurrency < 1 {
		return nil, errs.BadInput(fmt.Errorf("loadgen: neither arrivals nor a concurrency"), "set an arrival rate (open loop) or a concurrency (closed loop)")
	} else if cfg.Requests <= 0 && cfg.Duration <= 0 {
		return nil, errs.BadInput(fmt.Errorf("loadgen: neither a request count nor a duration"), "set requests or duration")
	}
	client := cfg.Client
	if client == nil {
		client = NewClient()
		// Its keep-alive connections are of no use to anyone after Run.
		defer client.CloseIdleConnections()
	}
	url := strings.TrimSuffix(cfg.BaseURL, "/") + "/v1/" + cfg.api()
	g := &gen{cfg: cfg, client: client, url: url, bodies: bodies, start: time.Now(), startNs: clock.Now()}
	if cfg.Arrivals != nil {
		g.open(ctx, sched)
	} else {
		g.closed(ctx)
	}
	rep := &Report{Start: g.start, StartNs: g.startNs, Open: cfg.Arrivals != nil, Elapsed: time.Since(g.start), Results: g.results}
	slices.SortFunc(rep.Results, func(a, b Result) int { return a.Index - b.Index })
	lags := make([]time.Duration, 0, len(rep.Results))
	var disp []time.Duration
	for i := range rep.Results {
		r := &rep.Results[i]
		if !r.OK() {
			rep.Failed++
		}
		if r.TimedOut {
			rep.TimedOut++
		}
		if rep.Open {
			l := max(0, r.Sent-r.Scheduled)
			lags = append(lags, l)
			disp = append(disp, max(0, r.Dispatched-r.Scheduled))
			if l > LateThreshold {
				rep.Lag.Late++
			}
		}
	}
	if len(lags) > 0 {
		slices.Sort(lags)
		rep.Lag.P50 = durationQuantile(lags, 0.50)
		rep.Lag.P99 = durationQuantile(lags, 0.99)
		rep.Lag.Max = lags[len(lags)-1]
		rep.Lag.Behind = float64(rep.Lag.Late) > BehindShare*float64(len(lags))
		slices.Sort(disp)
		rep.Lag.DispatchP99 = durationQuantile(disp, 0.99)
	}
	return rep, nil
}

func (cfg *Config) api() string {
	if cfg.API == "" {
		return Completions
	}
	return cfg.API
}

// bodies encodes every prompt's request body once, before the run, so the
// send path does no JSON work.
func (cfg *Config) bodies() ([][]byte, error) {
	if len(cfg.Prompts) == 0 {
		return nil, errs.BadInput(fmt.Errorf("loadgen: no prompts"), "give at least one prompt")
	}
	api := cfg.api()
	if api != Completions && api != Chat {
		return nil, errs.BadInput(fmt.Errorf("loadgen: unknown API %q", api), `use "completions" or "chat/completions"`)
	}
	out := make([][]byte, len(cfg.Prompts))
	for i, p := range cfg.Prompts {
		b := map[string]any{"model": cfg.Model, "stream": !cfg.NoStream}
		if !cfg.NoStream {
			b["stream_options"] = map[string]any{"include_usage": true}
		}
		if p.MaxTokens > 0 {
			b["max_tokens"] = p.MaxTokens
		}
		if cfg.IgnoreEOS {
			b["ignore_eos"] = true
		}
		switch {
		case api == Chat:
			if p.Tokens != nil {
				return nil, errs.BadInput(fmt.Errorf("loadgen: prompt %d has token ids for the chat API", i), "chat takes text: set Prompt.Text")
			}
			b["messages"] = []map[string]string{{"role": "user", "content": p.Text}}
		case p.Tokens != nil:
			b["prompt"] = p.Tokens
		default:
			b["prompt"] = p.Text
		}
		var err error
		if out[i], err = json.Marshal(b); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// NewClient is the load generator's HTTP client: keep-alive connections for
// every request in flight, no proxy, no compression. Share one between a
// warm-up Run and the measured Run so the measured load finds its
// connections open instead of dialing them on its schedule.
func NewClient() *http.Client {
	return &http.Client{Transport: &http.Transport{
		Proxy:               nil, // a load generator measures the server, never a proxy
		DialContext:         (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:        0,
		MaxIdleConnsPerHost: 4096,
		IdleConnTimeout:     90 * time.Second,
		DisableCompression:  true,
	}}
}

type gen struct {
	cfg     Config
	client  *http.Client
	url     string
	bodies  [][]byte
	start   time.Time
	startNs int64 // clock.Now() at start

	mu      sync.Mutex
	results []Result
}

func (g *gen) since() time.Duration { return time.Since(g.start) }

func (g *gen) record(r Result) {
	g.mu.Lock()
	g.results = append(g.results, r)
	g.mu.Unlock()
}

// open sends request i at sched[i] whatever happened to earlier ones. The
// dispatcher never waits for a response; only the optional in-flight cap
// can hold it back, and that shows up as lag. It runs on its own OS thread
// and sleeps with clock_nanosleep on CLOCK_MONOTONIC (absolute deadlines,
// timer slack 1 ns): Go's timers wake up to a millisecond late when the
// process is idle, which would be the whole error budget. Requests are
// handed to a pool of sender goroutines that grows when all are busy, so a
// send costs no goroutine start.
func (g *gen) open(ctx context.Context, sched []time.Duration) {
	g.results = make([]Result, 0, len(sched))
	var sem chan struct{}
	if g.cfg.Concurrency > 0 {
		sem = make(chan struct{}, g.cfg.Concurrency)
	}
	type job struct {
		i        int
		due, out time.Duration
	}
	work := make(chan job)
	var wg sync.WaitGroup
	sender := func(j job) {
		defer wg.Done()
		for {
			r := g.do(ctx, j.i, j.due)
			r.Dispatched = j.out
			g.record(r)
			if sem != nil {
				<-sem
			}
			var ok bool
			if j, ok = <-work; !ok {
				return
			}
		}
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		runtime.LockOSThread() // never unlocked: the thread (and its timer slack) ends with the goroutine
		tightenTimerSlack()
		for i, due := range sched {
			if !sleepUntil(ctx, g.startNs, due) {
				break
			}
			if sem != nil {
				select {
				case sem <- struct{}{}:
				case <-ctx.Done():
				}
				if ctx.Err() != nil {
					break
				}
			}
			j := job{i, due, g.since()}
			select {
			case work <- j:
			default:
				wg.Add(1)
				go sender(j)
			}
		}
		close(work)
	}()
	<-done
	wg.Wait()
}

// closed keeps Concurrency requests in flight: each worker sends its next
// request when its last one ends. A closed-loop request is scheduled when it
// is sent.
func (g *gen) closed(ctx context.Context) {
	var next atomic.Int64
	var wg sync.WaitGroup
	for range g.cfg.Concurrency {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for ctx.Err() == nil {
				i := int(next.Add(1) - 1)
				if g.cfg.Requests > 0 && i >= g.cfg.Requests {
					return
				}
				now := g.since()
				if g.cfg.Requests <= 0 && now >= g.cfg.Duration {
					return
				}
				g.record(g.do(ctx, i, now))
			}
		}()
	}
	wg.Wait()
}

// sleepUntil waits until offset due from startNs (pkg/clock's monotonic
// time), or returns false when ctx ends first (checked at least every
// 20 ms).
func sleepUntil(ctx context.Context, startNs int64, due time.Duration) bool {
	const slice = int64(20 * time.Millisecond)
	target := startNs + int64(due)
	for {
		if ctx.Err() != nil {
			return false
		}
		now := clock.Now()
		if now >= target {
			return true
		}
		sleepTo(now, min(target, now+slice))
	}
}

// do sends one request and reads its response.
func (g *gen) do(ctx context.Context, i int, due time.Duration) Result {
	p := i % len(g.bodies)
	r := Result{Index: i, Prompt: p, Scheduled: due}
	if g.cfg.Timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, g.cfg.Timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, g.url, bytes.NewReader(g.bodies[p]))
	if err != nil {
		r.Err = err.Error()
		return r
	}
	req.Header.Set("Content-Type", "application/json")
	if !g.cfg.NoStream {
		req.Header.Set("Accept", "text/event-stream")
	}
	r.Sent = g.since()
	resp, err := g.client.Do(req)
	if err != nil {
		g.fail(&r, ctx, err)
		return r
	}
	defer resp.Body.Close()
	r.Status = resp.StatusCode
	if resp.StatusCode != http.StatusOK {
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
		r.End = g.since()
		r.Err = fmt.Sprintf("HTTP %d: %s", resp.StatusCode, strings.TrimSpace(string(msg)))
		return r
	}
	if g.cfg.NoStream {
		err = g.readWhole(resp.Body, &r)
	} else {
		err = g.readStream(resp.Body, &r)
	}
	r.End = g.since()
	if err != nil {
		g.fail(&r, ctx, err)
		return r
	}
	if r.OutputTokens == 0 {
		r.OutputTokens = len(r.Tokens)
	}
	return r
}

func (g *gen) fail(r *Result, ctx context.Context, err error) {
	r.End = g.since()
	r.Err = err.Error()
	if errors.Is(ctx.Err(), context.DeadlineExceeded) || errors.Is(err, context.DeadlineExceeded) {
		r.TimedOut = true
		r.Err = fmt.Sprintf("timed out after %s: %v", g.cfg.Timeout, err)
	}
}

// chunk is the part of a completion (or chat completion) chunk the
// generator reads.
type chunk struct {
	Choices []struct {
		Text  string `json:"text"`
		Delta struct {
			Content string `json:"content"`
		} `json:"delta"`
		Message struct {
			Content string `json:"content"`
		} `json:"message"`
	} `json:"choices"`
	Usage *struct {
		PromptTokens     int `json:"prompt_tokens"`
		CompletionTokens int `json:"completion_tokens"`
	} `json:"usage"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

var readers = sync.Pool{New: func() any { return bufio.NewReaderSize(nil, 4<<10) }}

// readStream parses an SSE stream, stamping each chunk that carries text
// with the client's clock when its line arrived.
func (g *gen) readStream(body io.Reader, r *Result) error {
	br := readers.Get().(*bufio.Reader)
	br.Reset(body)
	defer func() { br.Reset(nil); readers.Put(br) }()
	done := false
	for {
		line, err := br.ReadSlice('\n')
		if errors.Is(err, bufio.ErrBufferFull) {
			// A chunk longer than the buffer: assemble it.
			rest, err2 := br.ReadBytes('\n')
			line, err = append(append([]byte(nil), line...), rest...), err2
		}
		t := g.since()
		if len(line) > 0 {
			data, ok := bytes.CutPrefix(bytes.TrimRight(line, "\r\n"), []byte("data:"))
			if ok {
				data = bytes.TrimSpace(data)
				if string(data) == "[DONE]" {
					done = true
				} else if err := r.chunk(data, t); err != nil {
					return err
				}
			}
		}
		if err == io.EOF {
			if !done {
				return fmt.Errorf("stream ended without data: [DONE]")
			}
			return nil
		}
		if err != nil {
			return err
		}
	}
}

func (r *Result) chunk(data []byte, t time.Duration) error {
	var c chunk
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("bad stream chunk %.80q: %v", data, err)
	}
	if c.Error != nil {
		return fmt.Errorf("server error mid-stream: %s", c.Error.Message)
	}
	for _, ch := range c.Choices {
		if ch.Text != "" || ch.Delta.Content != "" {
			r.Tokens = append(r.Tokens, t)
			break
		}
	}
	if c.Usage != nil {
		r.PromptTokens, r.OutputTokens = c.Usage.PromptTokens, c.Usage.CompletionTokens
	}
	return nil
}

func (g *gen) readWhole(body io.Reader, r *Result) error {
	data, err := io.ReadAll(body)
	if err != nil {
		return err
	}
	var c chunk
	if err := json.Unmarshal(data, &c); err != nil {
		return fmt.Errorf("bad response %.80q: %v", data, err)
	}
	if c.Usage != nil {
		r.PromptTokens, r.OutputTokens = c.Usage.PromptTokens, c.Usage.CompletionTokens
	}
	return nil
}
