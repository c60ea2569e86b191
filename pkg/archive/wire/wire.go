// Package wire is the contract between `llem results push` and an llem
// archive server (`llem archive serve`): the push request and response of
// API v1 and the record hash both sides compute. It imports nothing from the
// rest of llem so that the client and the server can each depend on it.
package wire

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// Version names the push format. A server refuses (400, code
// "schema_version") a request whose SchemaVersion it does not speak.
const Version = "llem-push/1"

// PushPath is where a PushRequest is POSTed, relative to the archive's base
// URL. The request carries "Authorization: Bearer <token>" with write scope.
const PushPath = "/api/v1/records"

// KnownPath answers which of a list of record hashes the archive already
// holds (POST KnownRequest, reply KnownResponse); a client uses it to resume
// an interrupted push without re-sending what was stored.
const KnownPath = "/api/v1/records/known"

// PushRequest is one batch of records from one study directory.
type PushRequest struct {
	SchemaVersion string `json:"schema_version"`
	// PushID is chosen by the client once per `llem results push` and kept
	// across its batches and retries, so the server can group a push.
	PushID string `json:"push_id"`
	// Client names the llem that pushed (version and commit); each record
	// also carries the llem that measured it (record.llem).
	Client Client `json:"client"`
	// Records are the study's result records as the client read them from
	// the study directory (after removing fields that identify the user, see
	// docs/sharing.md), each with its hash.
	Records []PushedRecord `json:"records"`
}

// Client is the pushing llem.
type Client struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
}

// PushedRecord is one record and the hash the client computed over it.
// The server recomputes RecordHash(Record) and rejects a mismatch.
type PushedRecord struct {
	SHA256 string          `json:"sha256"`
	Record json.RawMessage `json:"record"`
}

// PushResponse says, per record of the request, whether it was stored.
// Pushing a record the archive already holds is not an error: it is
// accepted with Duplicate set and stored once.
type PushResponse struct {
	PushID   string     `json:"push_id"`
	Accepted []Accepted `json:"accepted"`
	Rejected []Rejected `json:"rejected"`
}

// Accepted is a record the archive holds after the request.
type Accepted struct {
	SHA256    string `json:"sha256"`
	RunID     string `json:"run_id"`
	Cycle     int    `json:"cycle"`
	Duplicate bool   `json:"duplicate,omitempty"`
	// Verdict is the server's consistency check result ("consistent" or
	// "inconsistent"), stored with the record; Checks lists what failed.
	Verdict string   `json:"verdict"`
	Checks  []string `json:"checks,omitempty"`
}

// Rejected is a record the archive refused, and why.
type Rejected struct {
	SHA256 string `json:"sha256"`
	RunID  string `json:"run_id,omitempty"`
	Cycle  int    `json:"cycle,omitempty"`
	// Code is machine-readable (hash_mismatch, missing_provenance,
	// schema_version, malformed, ...); Reason is for people.
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// KnownRequest asks which hashes are stored.
type KnownRequest struct {
	SHA256 []string `json:"sha256"`
}

// KnownResponse lists the subset of the asked hashes that are stored.
type KnownResponse struct {
	Known []string `json:"known"`
}

// ErrorResponse is the body of every 4xx/5xx reply.
type ErrorResponse struct {
	Code   string `json:"code"`
	Reason string `json:"reason"`
}

// RecordHash is the lowercase hex SHA-256 of the record's canonical JSON:
// decoded with numbers kept as written, then re-encoded compactly with object
// keys sorted (encoding/json's map order) and no HTML escaping. Whitespace and
// key order of the input do not change it; any value change does.
func RecordHash(record json.RawMessage) (string, error) {
	canon, err := Canonical(record)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(canon)
	return hex.EncodeToString(sum[:]), nil
}

// Canonical returns the canonical JSON encoding RecordHash hashes.
func Canonical(raw json.RawMessage) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("record is not JSON: %w", err)
	}
	if dec.More() {
		return nil, fmt.Errorf("record has trailing data after the JSON value")
	}
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}
