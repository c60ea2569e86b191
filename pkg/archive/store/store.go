// Package store keeps the archive's records and tokens: one Store
// interface, implemented over database/sql for SQLite (a file, the
// default: modernc.org/sqlite, pure Go) and PostgreSQL (pgx; records as
// JSONB beside indexed metadata columns). Schemas are versioned
// migrations (migrations.go). storetest is the conformance suite both
// pass.
package store

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/llenergymeasure/llem/pkg/archive/verify"
)

// Store is what the archive server needs from a database.
type Store interface {
	// Put stores the records in one transaction: all of them or, on error,
	// none. A record whose hash is already stored is not stored again: its
	// result says Duplicate and carries the stored verdict.
	Put(ctx context.Context, p Push, recs []*verify.Record) ([]PutResult, error)
	// Known returns the subset of hashes that are stored.
	Known(ctx context.Context, hashes []string) ([]string, error)
	// Get returns one stored record, or ErrNotFound.
	Get(ctx context.Context, sha256 string) (*Stored, error)
	// List returns the metadata of the records matching f, newest first,
	// after the cursor (0: from the newest), at most limit of them, and
	// the cursor of the next page (0 when there is none).
	List(ctx context.Context, f Filter, cursor int64, limit int) ([]Row, int64, error)
	// Count counts the records matching f.
	Count(ctx context.Context, f Filter) (int, error)
	// Configs groups the records matching f by configuration and GPU, in
	// model, backend, precision order; offset/limit page through them.
	Configs(ctx context.Context, f Filter, offset, limit int) ([]ConfigGroup, int, error)
	// Records returns the full records of the given groups that match f,
	// at most limit.
	Records(ctx context.Context, f Filter, groups []ConfigGroup, limit int) ([]*Stored, error)
	// Facets lists the distinct values of each filter column.
	Facets(ctx context.Context) (Facets, error)

	CreateToken(ctx context.Context, t Token, hash string) (Token, error)
	Tokens(ctx context.Context) ([]Token, error)
	// TokenByHash returns the live (not revoked) token with this hash, or
	// ErrNotFound.
	TokenByHash(ctx context.Context, hash string) (Token, error)
	// RevokeToken revokes the token with this ID or name.
	RevokeToken(ctx context.Context, idOrName string) (Token, error)

	// Migrate applies the migrations not applied yet and returns the
	// schema version; SchemaVersion says where the database stands.
	Migrate(ctx context.Context) (int, error)
	SchemaVersion(ctx context.Context) (int, error)
	// Kind is "sqlite" or "postgres".
	Kind() string
	Close() error
}

// ErrNotFound is returned for a missing record or token.
var ErrNotFound = errors.New("not found")

// ErrNotMigrated is returned when the database's schema is older than this
// llem's: run llem archive migrate.
var ErrNotMigrated = errors.New("the archive database's schema is not up to date (run llem archive migrate)")

// Push is who pushed a batch.
type Push struct {
	ID            string
	TokenID       int64
	ClientVersion string
	ClientCommit  string
	At            time.Time
}

// PutResult is one record's outcome of Put.
type PutResult struct {
	SHA256    string
	Duplicate bool
	Verdict   string
	Checks    []string
}

// Row is a stored record's metadata (the indexed columns).
type Row struct {
	ID int64
	verify.Meta
	SHA256     string
	Verdict    string
	Checks     []string
	ReceivedAt time.Time
	PushID     string
	TokenID    int64
	Client     string
}

// Stored is a stored record: its metadata and its canonical JSON (the
// bytes its SHA256 covers).
type Stored struct {
	Row
	Record []byte
}

// Filter selects records. Empty fields match everything; text fields
// match exactly.
type Filter struct {
	Model, Backend, GPU, Precision, LlemVersion string
	Study, RunID, ConfigHash                    string
	// Verdict is "consistent", "inconsistent" or "" (both).
	Verdict string
	// Status is "ok", "failed" or "".
	Status string
	// From and To bound the time the record was measured
	// (timing.started_at), From inclusive, To exclusive.
	From, To time.Time
}

// ConfigGroup is one configuration on one kind of GPU.
type ConfigGroup struct {
	ConfigHash, GPU                  string
	Model, Backend, Precision, RunID string
	Records                          int
}

// Facets are the distinct values of the filter columns.
type Facets struct {
	Models, Backends, GPUs, Precisions, LlemVersions []string
}

// Scopes of a token: read may query; write may also push.
const (
	ScopeRead  = "read"
	ScopeWrite = "write"
)

// Token is an API token as stored: never the secret, only its hash.
type Token struct {
	ID         int64
	Name       string
	Scope      string
	RatePerMin int
	CreatedAt  time.Time
	RevokedAt  *time.Time
}

// Allows says whether the token's scope grants scope.
func (t Token) Allows(scope string) bool {
	return t.Scope == ScopeWrite || t.Scope == scope
}

// Open opens the database named by url: postgres://… or postgresql://…
// for PostgreSQL, sqlite:PATH or a plain file path for SQLite.
func Open(ctx context.Context, url string) (Store, error) {
	switch {
	case strings.HasPrefix(url, "postgres://"), strings.HasPrefix(url, "postgresql://"):
		return openPostgres(ctx, url)
	case url == "":
		return nil, fmt.Errorf("no archive database given (--db PATH or postgres://…)")
	default:
		return openSQLite(ctx, strings.TrimPrefix(url, "sqlite:"))
	}
}
