package share

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/internal/errs"
	"github.com/llenergymeasure/llem/internal/redact"
	"github.com/llenergymeasure/llem/internal/version"
	"github.com/llenergymeasure/llem/pkg/archive/wire"
)

// Defaults of a Client.
const (
	// DefaultBatch is the number of records per request.
	DefaultBatch = 100
	// DefaultBatchBytes bounds a request body; a batch that would pass it
	// is cut short (a record is ~10 KiB, so 100 fit easily).
	DefaultBatchBytes = 4 << 20
	// knownChunk is the number of hashes per KnownPath request.
	knownChunk = 1000
	// maxAttempts is how often one request is tried on a network error,
	// 429 or 5xx: pushes are idempotent, so a retry never stores twice.
	maxAttempts = 5
)

// ParseArchiveURL checks an archive's base URL: http or https, no query or
// fragment. Plain http is allowed only to a loopback address, since the
// token travels in a header. It returns the URL without a trailing slash.
func ParseArchiveURL(s string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(s))
	if err != nil || u.Host == "" || u.Opaque != "" || (u.Scheme != "http" && u.Scheme != "https") {
		return "", errs.BadInput(fmt.Errorf("archive URL %q is not an http(s) URL", redact.URL(s)),
			"give the archive's base URL, e.g. https://archive.example.org (or hf://datasets/OWNER/NAME for the Hugging Face Hub)")
	}
	if u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return "", errs.BadInput(fmt.Errorf("archive URL %q has a query or fragment", redact.URL(s)), "give the base URL only; the token comes from LLEM_API_KEY or sharing.api_key")
	}
	if u.User != nil {
		return "", errs.BadInput(fmt.Errorf("archive URL %q carries credentials", redact.URL(s)), "remove user:password@ from the URL; the token comes from LLEM_API_KEY or sharing.api_key")
	}
	if u.Scheme == "http" && !loopback(u.Hostname()) {
		return "", errs.BadInput(fmt.Errorf("archive URL %s is plain http to a remote host: the token would travel unencrypted", redact.URL(s)),
			"use https (docs/sharing.md: running an archive behind TLS); plain http is allowed to localhost only")
	}
	return u.Scheme + "://" + u.Host + strings.TrimRight(u.EscapedPath(), "/"), nil
}

func loopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

// Client pushes records to one archive.
type Client struct {
	// Base is the archive's URL (ParseArchiveURL).
	Base string
	// Token is sent as "Authorization: Bearer"; it is never printed and
	// never part of an error.
	Token string
	// HTTP is the client used; nil: one with timeouts.
	HTTP *http.Client
	// Batch and BatchBytes bound each request (0: the defaults).
	Batch, BatchBytes int
	// PushID groups this push's requests (NewPushID when empty).
	PushID string
	// Progress, when set, is called after each stored batch with the
	// records done so far (including those the archive already held).
	Progress func(done, total int)
	// Backoff is the wait before retry n (1, 2, ...); nil: 0.5 s doubling,
	// or the server's Retry-After.
	Backoff func(n int) time.Duration
}

// NewPushID returns a random push id.
func NewPushID() string {
	b := make([]byte, 12)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Result is what the archive said about a push.
type Result struct {
	PushID string
	// AlreadyStored are records the archive held before this push (found
	// through wire.KnownPath and not sent again).
	AlreadyStored []Item
	Accepted      []wire.Accepted
	Rejected      []wire.Rejected
}

// HTTPError is a refused request: the status and the archive's reason.
type HTTPError struct {
	Status int
	Code   string
	Reason string
	Path   string
}

func (e *HTTPError) Error() string {
	msg := fmt.Sprintf("archive answered %d %s to %s", e.Status, http.StatusText(e.Status), e.Path)
	if e.Code != "" || e.Reason != "" {
		msg += fmt.Sprintf(": %s: %s", e.Code, e.Reason)
	}
	return msg
}

// Push sends items the archive does not hold yet, in batches, and returns
// what it accepted and rejected. It first asks which hashes are stored
// (wire.KnownPath), so a push interrupted at any point resumes where the
// archive's durable state ends; a record sent twice is stored once anyway.
func (c *Client) Push(ctx context.Context, items []Item) (*Result, error) {
	if c.PushID == "" {
		c.PushID = NewPushID()
	}
	res := &Result{PushID: c.PushID}
	hashes := make([]string, len(items))
	for i, it := range items {
		hashes[i] = it.SHA256
	}
	known, err := c.Known(ctx, hashes)
	if err != nil {
		return nil, err
	}
	var unpushed []Item
	seen := map[string]bool{}
	for _, it := range items {
		switch {
		case known[it.SHA256]:
			res.AlreadyStored = append(res.AlreadyStored, it)
		case seen[it.SHA256]: // the same record twice in one push
		default:
			seen[it.SHA256] = true
			unpushed = append(unpushed, it)
		}
	}
	done := len(res.AlreadyStored)
	if c.Progress != nil {
		c.Progress(done, len(items))
	}
	for len(unpushed) > 0 {
		n := c.batchLen(unpushed)
		resp, n, err := c.pushBatch(ctx, unpushed[:n])
		if err != nil {
			return res, err
		}
		res.Accepted = append(res.Accepted, resp.Accepted...)
		res.Rejected = append(res.Rejected, resp.Rejected...)
		unpushed = unpushed[n:]
		done += n
		if c.Progress != nil {
			c.Progress(done, len(items))
		}
	}
	return res, nil
}

// batchLen is how many of items the next request carries.
func (c *Client) batchLen(items []Item) int {
	maxN, maxB := c.Batch, c.BatchBytes
	if maxN <= 0 {
		maxN = DefaultBatch
	}
	if maxB <= 0 {
		maxB = DefaultBatchBytes
	}
	size := 0
	for i, it := range items {
		size += len(it.Record) + 100
		if i == maxN || (i > 0 && size > maxB) {
			return i
		}
	}
	return len(items)
}

// pushBatch posts one batch; a 413 halves it (down to one record). It
// returns the response and how many items it covered.
func (c *Client) pushBatch(ctx context.Context, batch []Item) (*wire.PushResponse, int, error) {
	for {
		req := wire.PushRequest{SchemaVersion: wire.Version, PushID: c.PushID,
			Client: wire.Client{Version: version.Version, Commit: version.Commit()}}
		for _, it := range batch {
			req.Records = append(req.Records, wire.PushedRecord{SHA256: it.SHA256, Record: it.Record})
		}
		var resp wire.PushResponse
		err := c.post(ctx, wire.PushPath, req, &resp)
		var he *HTTPError
		if errors.As(err, &he) && he.Status == http.StatusRequestEntityTooLarge && len(batch) > 1 {
			batch = batch[:len(batch)/2]
			continue
		}
		if err != nil {
			return nil, 0, err
		}
		if err := checkAnswer(batch, &resp); err != nil {
			return nil, 0, err
		}
		return &resp, len(batch), nil
	}
}

// checkAnswer insists that the archive answered for every record sent,
// once, so nothing is reported stored that was not.
func checkAnswer(batch []Item, resp *wire.PushResponse) error {
	sent := map[string]bool{}
	for _, it := range batch {
		sent[it.SHA256] = true
	}
	answered := map[string]bool{}
	for _, a := range resp.Accepted {
		answered[a.SHA256] = true
	}
	for _, r := range resp.Rejected {
		answered[r.SHA256] = true
	}
	for h := range sent {
		if !answered[h] {
			return fmt.Errorf("the archive did not answer for record %s of the batch (protocol %s); push again to resume", h, wire.Version)
		}
	}
	return nil
}

// Known returns the subset of hashes the archive holds.
func (c *Client) Known(ctx context.Context, hashes []string) (map[string]bool, error) {
	known := map[string]bool{}
	for start := 0; start < len(hashes); start += knownChunk {
		chunk := hashes[start:min(start+knownChunk, len(hashes))]
		var resp wire.KnownResponse
		if err := c.post(ctx, wire.KnownPath, wire.KnownRequest{SHA256: chunk}, &resp); err != nil {
			return nil, err
		}
		asked := map[string]bool{}
		for _, h := range chunk {
			asked[h] = true
		}
		for _, h := range resp.Known {
			if asked[h] {
				known[h] = true
			}
		}
	}
	return known, nil
}

// post sends body as JSON to path and decodes a 200 answer into out,
// retrying network errors, 429 and 5xx.
func (c *Client) post(ctx context.Context, path string, body, out any) error {
	data, err := json.Marshal(body)
	if err != nil {
		return err
	}
	var last error
	for attempt := 1; attempt <= maxAttempts; attempt++ {
		retryAfter, err := c.try(ctx, path, data, out)
		if err == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var he *HTTPError
		if errors.As(err, &he) && he.Status != http.StatusTooManyRequests && he.Status < 500 {
			return c.explain(he)
		}
		last = err
		if attempt == maxAttempts {
			break
		}
		wait := retryAfter
		if wait == 0 {
			if c.Backoff != nil {
				wait = c.Backoff(attempt)
			} else {
				wait = time.Duration(500<<(attempt-1)) * time.Millisecond
			}
		}
		t := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			t.Stop()
			return ctx.Err()
		case <-t.C:
		}
	}
	var he *HTTPError
	if errors.As(last, &he) {
		return errs.WithHint(last, "the archive is having trouble; push again later: records already stored are skipped")
	}
	return errs.WithHint(fmt.Errorf("archive %s unreachable: %w", redact.URL(c.Base), last), "check the URL and the network; push again to resume: records already stored are skipped")
}

// try makes one request; it returns the server's Retry-After, if any.
func (c *Client) try(ctx context.Context, path string, data []byte, out any) (time.Duration, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+path, bytes.NewReader(data))
	if err != nil {
		return 0, err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "llem/"+version.Version)
	req.Header.Set("Authorization", "Bearer "+c.Token)
	resp, err := c.httpClient().Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is named by the caller, redacted
		}
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
		// An archive answers 422 when it rejected every record of a push,
		// with the per-record wire.PushResponse beside the error fields
		// (llem archive serve): that is an answer, not a failure.
		if pr, ok := out.(*wire.PushResponse); ok && resp.StatusCode == http.StatusUnprocessableEntity {
			if json.Unmarshal(body, pr) == nil && len(pr.Rejected) > 0 {
				return 0, nil
			}
		}
		he := &HTTPError{Status: resp.StatusCode, Path: path}
		var er wire.ErrorResponse
		if json.Unmarshal(body, &er) == nil {
			he.Code, he.Reason = er.Code, er.Reason
		}
		var wait time.Duration
		if s, err := strconv.Atoi(resp.Header.Get("Retry-After")); err == nil && s > 0 {
			wait = min(time.Duration(s)*time.Second, 30*time.Second)
		}
		return wait, he
	}
	dec := json.NewDecoder(io.LimitReader(resp.Body, 64<<20))
	if err := dec.Decode(out); err != nil {
		return 0, fmt.Errorf("unreadable answer from the archive to %s: %w", path, err)
	}
	return 0, nil
}

// explain adds the hint for a refused request.
func (c *Client) explain(he *HTTPError) error {
	switch {
	case he.Status == http.StatusUnauthorized:
		return errs.WithHint(he, "the archive refused the token: check LLEM_API_KEY or sharing.api_key in the user config (llem archive token create makes one)")
	case he.Status == http.StatusForbidden:
		return errs.WithHint(he, "the token may not push: ask the archive's operator for a token with write scope")
	case he.Code == "schema_version":
		return errs.WithHint(he, "this llem speaks "+wire.Version+"; the archive another version: update llem or ask the operator")
	}
	return he
}

func (c *Client) httpClient() *http.Client {
	if c.HTTP != nil {
		return c.HTTP
	}
	tr := http.DefaultTransport.(*http.Transport).Clone()
	tr.ResponseHeaderTimeout = 120 * time.Second
	return &http.Client{Transport: tr, Timeout: 10 * time.Minute,
		// A redirect would carry the token elsewhere; refuse it.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}
