// Package server is `llem archive serve`: the archive's HTTP API v1 (push
// per pkg/archive/wire, query, per-configuration statistics) and its
// server-rendered browse page, over a store.Store. Tokens are checked per
// request (hashed, scoped, rate-limited); bodies are size-limited; access
// logs are structured (log/slog) and never carry a token.
package server

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/pkg/archive/store"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
	"github.com/llenergymeasure/llem/pkg/stats"
)

// Options configure a Server; zero values take the defaults named.
type Options struct {
	// MaxBodyBytes bounds a request body (DefaultMaxBody); larger is 413.
	MaxBodyBytes int64
	// MaxRecords bounds the records of one push (DefaultMaxRecords).
	MaxRecords int
	// PublicRead lets anyone query and browse without a token; pushing
	// always needs a write token.
	PublicRead bool
	// AnonymousRatePerMin limits each anonymous client address
	// (DefaultAnonymousRate); tokens carry their own rate.
	AnonymousRatePerMin int
	// TrustProxy takes the client address from X-Forwarded-For (set it
	// only behind a reverse proxy that overwrites that header).
	TrustProxy bool
	// Stats are the bootstrap settings of the per-configuration statistics
	// (default: results show's, 10000 resamples, seed 42, 95%).
	Stats stats.Options
	// MaxGroupRecords bounds the records one statistics page summarises.
	MaxGroupRecords int
	// Version names the serving llem.
	Version string
	Logger  *slog.Logger
}

// Defaults of Options.
const (
	DefaultMaxBody         = 32 << 20
	DefaultMaxRecords      = 1000
	DefaultAnonymousRate   = 300
	DefaultMaxGroupRecords = 20000
)

// Server serves one archive.
type Server struct {
	store store.Store
	opt   Options
	log   *slog.Logger
	limit *limiter
	mux   *http.ServeMux
}

// route is one endpoint. Routes is the list docs/archive-openapi.yaml
// documents (a test compares them).
type route struct {
	Method, Path string
	// API routes are under /api/v1 and documented in the OpenAPI file.
	API     bool
	handler func(*Server, http.ResponseWriter, *http.Request)
}

var routes = []route{
	{"GET", "/api/v1/health", true, (*Server).health},
	{"GET", "/api/v1/openapi.yaml", true, (*Server).openapi},
	{"POST", wire.PushPath, true, (*Server).push},
	{"POST", wire.KnownPath, true, (*Server).known},
	{"GET", "/api/v1/records", true, (*Server).list},
	{"GET", "/api/v1/records/{sha256}", true, (*Server).get},
	{"GET", "/api/v1/configs", true, (*Server).configs},
	{"GET", "/api/v1/facets", true, (*Server).facets},
	{"GET", "/{$}", false, (*Server).browseRecords},
	{"GET", "/configs", false, (*Server).browseConfigs},
	{"GET", "/records/{sha256}", false, (*Server).browseRecord},
	{"GET", "/report", false, (*Server).browseReport},
}

// Routes lists "METHOD PATH" of every API route, for the OpenAPI test.
func Routes() []string {
	var out []string
	for _, r := range routes {
		if r.API {
			out = append(out, r.Method+" "+r.Path)
		}
	}
	return out
}

// New returns a server over st (already migrated).
func New(st store.Store, o Options) *Server {
	if o.MaxBodyBytes <= 0 {
		o.MaxBodyBytes = DefaultMaxBody
	}
	if o.MaxRecords <= 0 {
		o.MaxRecords = DefaultMaxRecords
	}
	if o.AnonymousRatePerMin == 0 {
		o.AnonymousRatePerMin = DefaultAnonymousRate
	}
	if o.MaxGroupRecords <= 0 {
		o.MaxGroupRecords = DefaultMaxGroupRecords
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	s := &Server{store: st, opt: o, log: o.Logger, limit: newLimiter(), mux: http.NewServeMux()}
	for _, rt := range routes {
		h := rt.handler
		s.mux.HandleFunc(rt.Method+" "+rt.Path, func(w http.ResponseWriter, r *http.Request) { h(s, w, r) })
	}
	return s
}

// ServeHTTP logs each request and sets the headers every reply has.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	start := time.Now()
	rw := &recorder{ResponseWriter: w, status: http.StatusOK}
	h := rw.Header()
	h.Set("X-Content-Type-Options", "nosniff")
	h.Set("Referrer-Policy", "no-referrer")
	h.Set("X-Frame-Options", "DENY")
	ctx := context.WithValue(r.Context(), logKey{}, &logInfo{})
	s.mux.ServeHTTP(rw, r.WithContext(ctx))
	info := ctx.Value(logKey{}).(*logInfo)
	attrs := []slog.Attr{
		slog.String("method", r.Method), slog.String("path", r.URL.Path), slog.String("query", r.URL.RawQuery),
		slog.Int("status", rw.status), slog.Int64("bytes", rw.bytes), slog.Duration("duration", time.Since(start)),
		slog.String("remote", s.clientAddr(r)), slog.String("user_agent", r.UserAgent()),
	}
	if info.token != "" {
		attrs = append(attrs, slog.String("token", info.token)) // the token's name, never its secret
	}
	if info.code != "" {
		attrs = append(attrs, slog.String("code", info.code))
	}
	for k, v := range info.extra {
		attrs = append(attrs, slog.Int(k, v))
	}
	s.log.LogAttrs(r.Context(), slog.LevelInfo, "request", attrs...)
}

type logKey struct{}

// logInfo is what handlers add to the access log line.
type logInfo struct {
	token, code string
	tokenID     int64
	extra       map[string]int
}

func logOf(r *http.Request) *logInfo {
	if li, ok := r.Context().Value(logKey{}).(*logInfo); ok {
		return li
	}
	return &logInfo{}
}

type recorder struct {
	http.ResponseWriter
	status int
	bytes  int64
}

func (r *recorder) WriteHeader(code int) { r.status = code; r.ResponseWriter.WriteHeader(code) }
func (r *recorder) Write(b []byte) (int, error) {
	n, err := r.ResponseWriter.Write(b)
	r.bytes += int64(n)
	return n, err
}

func (s *Server) clientAddr(r *http.Request) string {
	if s.opt.TrustProxy {
		if f := r.Header.Get("X-Forwarded-For"); f != "" {
			first, _, _ := strings.Cut(f, ",")
			return strings.TrimSpace(first)
		}
	}
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

// apiError is a 4xx/5xx reply: wire.ErrorResponse.
type apiError struct {
	Status       int
	Code, Reason string
	RetryAfter   time.Duration
}

func (e *apiError) Error() string { return e.Code + ": " + e.Reason }

func fail(status int, code, format string, a ...any) *apiError {
	return &apiError{Status: status, Code: code, Reason: fmt.Sprintf(format, a...)}
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.Encode(v)
}

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, e *apiError) {
	logOf(r).code = e.Code
	if e.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.Itoa(int(e.RetryAfter.Seconds())+1))
	}
	if e.Status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="llem archive"`)
	}
	writeJSON(w, e.Status, wire.ErrorResponse{Code: e.Code, Reason: e.Reason})
}

// storeError maps a store failure to a reply: a full disk is 507 and the
// push can be repeated after space is freed; anything else (a database
// restarting, a lost connection) is 503 and can be retried.
func storeError(err error) *apiError {
	if store.IsFull(err) {
		return &apiError{Status: http.StatusInsufficientStorage, Code: "storage_full",
			Reason: "the archive's disk is full: nothing of this request was stored; push again once the operator frees space", RetryAfter: 60 * time.Second}
	}
	if errors.Is(err, context.Canceled) {
		return fail(499, "canceled", "the request was canceled")
	}
	return &apiError{Status: http.StatusServiceUnavailable, Code: "store_unavailable",
		Reason: "the archive's database failed this request (nothing of it was stored); retry: " + err.Error(), RetryAfter: 2 * time.Second}
}

func (s *Server) health(w http.ResponseWriter, r *http.Request) {
	v, err := s.store.SchemaVersion(r.Context())
	if err != nil {
		s.writeError(w, r, storeError(err))
		return
	}
	writeJSON(w, http.StatusOK, map[string]any{"status": "ok", "version": s.opt.Version, "store": s.store.Kind(), "schema_version": v, "push_format": wire.Version})
}
