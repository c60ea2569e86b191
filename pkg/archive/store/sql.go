package store

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/llenergymeasure/llem/pkg/archive/verify"
)

// sqlStore is the Store over database/sql; the dialect supplies what
// differs between SQLite and PostgreSQL.
type sqlStore struct {
	db   *sql.DB
	kind string
	// rebind turns ? placeholders into the dialect's.
	rebind     func(string) string
	migrations []migration
	// writeMu serialises SQLite's writers in Go (one writer at a time is
	// all SQLite allows; queueing here is fairer than its busy handler).
	writeMu *sync.Mutex
	// lockMigrations takes the dialect's migration lock inside tx.
	lockMigrations func(ctx context.Context, tx *sql.Tx) error
}

func (s *sqlStore) Kind() string { return s.kind }
func (s *sqlStore) Close() error { return s.db.Close() }

func us(t time.Time) int64 { return t.UnixMicro() }
func fromUS(v int64) time.Time {
	return time.UnixMicro(v).UTC()
}

func (s *sqlStore) q(query string) string { return s.rebind(query) }

func (s *sqlStore) lockWrite() func() {
	if s.writeMu == nil {
		return func() {}
	}
	s.writeMu.Lock()
	return s.writeMu.Unlock
}

// SchemaVersion is the highest applied migration (0 for an empty database).
func (s *sqlStore) SchemaVersion(ctx context.Context) (int, error) {
	var v sql.NullInt64
	err := s.db.QueryRowContext(ctx, `SELECT MAX(version) FROM schema_migrations`).Scan(&v)
	if err != nil {
		if isNoTable(err) {
			return 0, nil
		}
		return 0, err
	}
	return int(v.Int64), nil
}

// Latest is the schema version this llem's migrations reach.
func (s *sqlStore) latest() int { return s.migrations[len(s.migrations)-1].Version }

// Migrate applies each pending migration in its own transaction.
func (s *sqlStore) Migrate(ctx context.Context) (int, error) {
	defer s.lockWrite()()
	if _, err := s.db.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version INTEGER PRIMARY KEY, name TEXT NOT NULL, applied_us BIGINT NOT NULL)`); err != nil {
		return 0, fmt.Errorf("create schema_migrations: %w", err)
	}
	for _, m := range s.migrations {
		if err := s.apply(ctx, m); err != nil {
			return 0, fmt.Errorf("migration %d (%s): %w", m.Version, m.Name, err)
		}
	}
	return s.SchemaVersion(ctx)
}

func (s *sqlStore) apply(ctx context.Context, m migration) error {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	if s.lockMigrations != nil {
		if err := s.lockMigrations(ctx, tx); err != nil {
			return err
		}
	}
	var n int
	if err := tx.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM schema_migrations WHERE version = ?`), m.Version).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return nil
	}
	for _, stmt := range m.SQL {
		if _, err := tx.ExecContext(ctx, stmt); err != nil {
			return err
		}
	}
	if _, err := tx.ExecContext(ctx, s.q(`INSERT INTO schema_migrations (version, name, applied_us) VALUES (?, ?, ?)`), m.Version, m.Name, us(time.Now())); err != nil {
		return err
	}
	return tx.Commit()
}

// checkMigrated refuses to serve a database older than this llem.
func (s *sqlStore) checkMigrated(ctx context.Context) error {
	v, err := s.SchemaVersion(ctx)
	if err != nil {
		return err
	}
	if v < s.latest() {
		return fmt.Errorf("%w: schema version %d, this llem needs %d", ErrNotMigrated, v, s.latest())
	}
	return nil
}

func jsonList(xs []string) string {
	if xs == nil {
		xs = []string{}
	}
	b, _ := json.Marshal(xs)
	return string(b)
}

func parseList(s string) []string {
	var xs []string
	if json.Unmarshal([]byte(s), &xs) != nil || xs == nil {
		return []string{}
	}
	return xs
}

const insertRecord = `INSERT INTO records (sha256, received_us, push_id, token_id, client, study, study_hash, run_id, config_hash,
	cycle, attempt, model, backend, precision, gpu, fingerprint, llem_version, llem_commit, started_us, status,
	verdict, checks, flags, energy_per_output_token_j, canonical)
	VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
	ON CONFLICT (sha256) DO NOTHING`

// Put stores recs in one transaction. Records are inserted in hash order,
// so two pushes of overlapping batches take their locks in the same order
// (no deadlock on PostgreSQL); a deadlock or serialisation failure all the
// same is retried.
func (s *sqlStore) Put(ctx context.Context, p Push, recs []*verify.Record) ([]PutResult, error) {
	defer s.lockWrite()()
	order := make([]int, len(recs))
	for i := range order {
		order[i] = i
	}
	sort.SliceStable(order, func(a, b int) bool { return recs[order[a]].SHA256 < recs[order[b]].SHA256 })
	sorted := make([]*verify.Record, len(recs))
	for i, j := range order {
		sorted[i] = recs[j]
	}
	var res []PutResult
	var err error
	for attempt := 0; attempt < 3; attempt++ {
		res, err = s.put(ctx, p, sorted)
		if err == nil || !isRetryable(err) {
			break
		}
	}
	if err != nil {
		return nil, err
	}
	out := make([]PutResult, len(recs))
	for i, j := range order {
		out[j] = res[i]
	}
	return out, nil
}

func isRetryable(err error) bool {
	m := err.Error()
	return strings.Contains(m, "SQLSTATE 40P01") || strings.Contains(m, "SQLSTATE 40001")
}

func (s *sqlStore) put(ctx context.Context, p Push, recs []*verify.Record) ([]PutResult, error) {
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer tx.Rollback()
	ins, err := tx.PrepareContext(ctx, s.q(insertRecord))
	if err != nil {
		return nil, err
	}
	defer ins.Close()
	client := strings.TrimSpace(p.ClientVersion + " " + p.ClientCommit)
	out := make([]PutResult, len(recs))
	for i, r := range recs {
		m := r.Meta
		var ept any
		if m.EnergyPerOutputTokenJ != nil {
			ept = *m.EnergyPerOutputTokenJ
		}
		res, err := ins.ExecContext(ctx, r.SHA256, us(p.At), p.ID, p.TokenID, client, m.Study, m.StudyHash, m.RunID, m.ConfigHash,
			m.Cycle, m.Attempt, m.Model, m.Backend, m.Precision, m.GPU, m.Fingerprint, m.LlemVersion, m.LlemCommit, us(m.StartedAt), m.Status,
			r.Verdict, jsonList(r.Checks), jsonList(m.Flags), ept, string(r.Canonical))
		if err != nil {
			return nil, fmt.Errorf("store record %s: %w", r.SHA256, err)
		}
		n, err := res.RowsAffected()
		if err != nil {
			return nil, err
		}
		out[i] = PutResult{SHA256: r.SHA256, Verdict: r.Verdict, Checks: r.Checks}
		if n == 0 {
			var checks string
			if err := tx.QueryRowContext(ctx, s.q(`SELECT verdict, checks FROM records WHERE sha256 = ?`), r.SHA256).Scan(&out[i].Verdict, &checks); err != nil {
				return nil, fmt.Errorf("read stored duplicate %s: %w", r.SHA256, err)
			}
			out[i].Duplicate = true
			out[i].Checks = parseList(checks)
		}
	}
	if err := tx.Commit(); err != nil {
		return nil, fmt.Errorf("commit: %w", err)
	}
	return out, nil
}

// Known returns the stored subset of hashes, in the order asked.
func (s *sqlStore) Known(ctx context.Context, hashes []string) ([]string, error) {
	known := []string{}
	for start := 0; start < len(hashes); start += 500 {
		chunk := hashes[start:min(len(hashes), start+500)]
		args := make([]any, len(chunk))
		for i, h := range chunk {
			args[i] = h
		}
		rows, err := s.db.QueryContext(ctx, s.q(`SELECT sha256 FROM records WHERE sha256 IN (`+placeholders(len(chunk))+`)`), args...)
		if err != nil {
			return nil, err
		}
		have := map[string]bool{}
		for rows.Next() {
			var h string
			if err := rows.Scan(&h); err != nil {
				rows.Close()
				return nil, err
			}
			have[h] = true
		}
		if err := rows.Close(); err != nil {
			return nil, err
		}
		for _, h := range chunk {
			if have[h] {
				known = append(known, h)
			}
		}
	}
	return known, nil
}

func placeholders(n int) string {
	return strings.TrimSuffix(strings.Repeat("?,", n), ",")
}

const rowColumns = `id, sha256, received_us, push_id, token_id, client, study, study_hash, run_id, config_hash, cycle, attempt,
	model, backend, precision, gpu, fingerprint, llem_version, llem_commit, started_us, status, verdict, checks, flags, energy_per_output_token_j`

type scanner interface{ Scan(...any) error }

func scanRow(sc scanner, extra ...any) (Row, error) {
	var r Row
	var received, started int64
	var checks, flags string
	var ept sql.NullFloat64
	dst := []any{&r.ID, &r.SHA256, &received, &r.PushID, &r.TokenID, &r.Client, &r.Study, &r.StudyHash, &r.RunID, &r.ConfigHash,
		&r.Cycle, &r.Attempt, &r.Model, &r.Backend, &r.Precision, &r.GPU, &r.Fingerprint, &r.LlemVersion, &r.LlemCommit,
		&started, &r.Status, &r.Verdict, &checks, &flags, &ept}
	if err := sc.Scan(append(dst, extra...)...); err != nil {
		return r, err
	}
	r.ReceivedAt, r.StartedAt = fromUS(received), fromUS(started)
	r.Checks, r.Flags = parseList(checks), parseList(flags)
	if ept.Valid {
		v := ept.Float64
		r.EnergyPerOutputTokenJ = &v
	}
	return r, nil
}

// Get returns one record by hash.
func (s *sqlStore) Get(ctx context.Context, sha string) (*Stored, error) {
	var st Stored
	var canon string
	row := s.db.QueryRowContext(ctx, s.q(`SELECT `+rowColumns+`, canonical FROM records WHERE sha256 = ?`), sha)
	r, err := scanRow(row, &canon)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, ErrNotFound
	}
	if err != nil {
		return nil, err
	}
	st.Row, st.Record = r, []byte(canon)
	return &st, nil
}

// where renders f as a WHERE clause body (always valid SQL) and its args.
func where(f Filter) (string, []any) {
	conds := []string{"1=1"}
	var args []any
	eq := func(col, v string) {
		if v != "" {
			conds = append(conds, col+" = ?")
			args = append(args, v)
		}
	}
	eq("model", f.Model)
	eq("backend", f.Backend)
	eq("gpu", f.GPU)
	eq("precision", f.Precision)
	eq("llem_version", f.LlemVersion)
	eq("study", f.Study)
	eq("run_id", f.RunID)
	eq("config_hash", f.ConfigHash)
	eq("verdict", f.Verdict)
	eq("status", f.Status)
	if !f.From.IsZero() {
		conds = append(conds, "started_us >= ?")
		args = append(args, us(f.From))
	}
	if !f.To.IsZero() {
		conds = append(conds, "started_us < ?")
		args = append(args, us(f.To))
	}
	return strings.Join(conds, " AND "), args
}

// List pages through matching records, newest first (by id).
func (s *sqlStore) List(ctx context.Context, f Filter, cursor int64, limit int) ([]Row, int64, error) {
	w, args := where(f)
	if cursor > 0 {
		w += " AND id < ?"
		args = append(args, cursor)
	}
	args = append(args, limit+1)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+rowColumns+` FROM records WHERE `+w+` ORDER BY id DESC LIMIT ?`), args...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []Row
	for rows.Next() {
		r, err := scanRow(rows)
		if err != nil {
			return nil, 0, err
		}
		out = append(out, r)
	}
	if err := rows.Err(); err != nil {
		return nil, 0, err
	}
	var next int64
	if len(out) > limit {
		out = out[:limit]
		next = out[limit-1].ID
	}
	return out, next, nil
}

// Count counts matching records.
func (s *sqlStore) Count(ctx context.Context, f Filter) (int, error) {
	w, args := where(f)
	var n int
	err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM records WHERE `+w), args...).Scan(&n)
	return n, err
}

// Configs groups matching records by (config_hash, gpu).
func (s *sqlStore) Configs(ctx context.Context, f Filter, offset, limit int) ([]ConfigGroup, int, error) {
	w, args := where(f)
	var total int
	if err := s.db.QueryRowContext(ctx, s.q(`SELECT COUNT(*) FROM (SELECT 1 FROM records WHERE `+w+` GROUP BY config_hash, gpu) g`), args...).Scan(&total); err != nil {
		return nil, 0, err
	}
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT config_hash, gpu, MIN(model), MIN(backend), MIN(precision), MIN(run_id), COUNT(*)
		FROM records WHERE `+w+` GROUP BY config_hash, gpu
		ORDER BY MIN(model), MIN(backend), MIN(precision), config_hash, gpu LIMIT ? OFFSET ?`), append(args, limit, offset)...)
	if err != nil {
		return nil, 0, err
	}
	defer rows.Close()
	var out []ConfigGroup
	for rows.Next() {
		var g ConfigGroup
		if err := rows.Scan(&g.ConfigHash, &g.GPU, &g.Model, &g.Backend, &g.Precision, &g.RunID, &g.Records); err != nil {
			return nil, 0, err
		}
		out = append(out, g)
	}
	return out, total, rows.Err()
}

// Records returns the full matching records of groups, oldest first.
func (s *sqlStore) Records(ctx context.Context, f Filter, groups []ConfigGroup, limit int) ([]*Stored, error) {
	if len(groups) == 0 {
		return nil, nil
	}
	w, args := where(f)
	var or []string
	for _, g := range groups {
		or = append(or, "(config_hash = ? AND gpu = ?)")
		args = append(args, g.ConfigHash, g.GPU)
	}
	args = append(args, limit)
	rows, err := s.db.QueryContext(ctx, s.q(`SELECT `+rowColumns+`, canonical FROM records WHERE `+w+` AND (`+strings.Join(or, " OR ")+`) ORDER BY id LIMIT ?`), args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []*Stored
	for rows.Next() {
		var canon string
		r, err := scanRow(rows, &canon)
		if err != nil {
			return nil, err
		}
		out = append(out, &Stored{Row: r, Record: []byte(canon)})
	}
	return out, rows.Err()
}

// Facets lists distinct filter values (at most 1000 each).
func (s *sqlStore) Facets(ctx context.Context) (Facets, error) {
	var f Facets
	for _, c := range []struct {
		col string
		dst *[]string
	}{{"model", &f.Models}, {"backend", &f.Backends}, {"gpu", &f.GPUs}, {"precision", &f.Precisions}, {"llem_version", &f.LlemVersions}} {
		rows, err := s.db.QueryContext(ctx, `SELECT DISTINCT `+c.col+` FROM records ORDER BY 1 LIMIT 1000`)
		if err != nil {
			return f, err
		}
		for rows.Next() {
			var v string
			if err := rows.Scan(&v); err != nil {
				rows.Close()
				return f, err
			}
			*c.dst = append(*c.dst, v)
		}
		if err := rows.Close(); err != nil {
			return f, err
		}
	}
	return f, nil
}

// CreateToken stores a new token under its hash.
func (s *sqlStore) CreateToken(ctx context.Context, t Token, hash string) (Token, error) {
	defer s.lockWrite()()
	if t.Scope != ScopeRead && t.Scope != ScopeWrite {
		return t, fmt.Errorf("scope %q: want read or write", t.Scope)
	}
	if t.Name == "" {
		return t, fmt.Errorf("a token needs a name")
	}
	t.CreatedAt = time.Now().UTC().Truncate(time.Microsecond)
	err := s.db.QueryRowContext(ctx, s.q(`INSERT INTO tokens (name, hash, scope, rate_per_min, created_us) VALUES (?, ?, ?, ?, ?) RETURNING id`),
		t.Name, hash, t.Scope, t.RatePerMin, us(t.CreatedAt)).Scan(&t.ID)
	if err != nil {
		if isUnique(err) {
			return t, fmt.Errorf("a token named %q exists already", t.Name)
		}
		return t, err
	}
	return t, nil
}

const tokenColumns = `id, name, scope, rate_per_min, created_us, revoked_us`

func scanToken(sc scanner) (Token, error) {
	var t Token
	var created int64
	var revoked sql.NullInt64
	if err := sc.Scan(&t.ID, &t.Name, &t.Scope, &t.RatePerMin, &created, &revoked); err != nil {
		return t, err
	}
	t.CreatedAt = fromUS(created)
	if revoked.Valid {
		r := fromUS(revoked.Int64)
		t.RevokedAt = &r
	}
	return t, nil
}

// Tokens lists every token, revoked ones included.
func (s *sqlStore) Tokens(ctx context.Context) ([]Token, error) {
	rows, err := s.db.QueryContext(ctx, `SELECT `+tokenColumns+` FROM tokens ORDER BY id`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []Token
	for rows.Next() {
		t, err := scanToken(rows)
		if err != nil {
			return nil, err
		}
		out = append(out, t)
	}
	return out, rows.Err()
}

// TokenByHash finds a live token.
func (s *sqlStore) TokenByHash(ctx context.Context, hash string) (Token, error) {
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenColumns+` FROM tokens WHERE hash = ? AND revoked_us IS NULL`), hash))
	if errors.Is(err, sql.ErrNoRows) {
		return t, ErrNotFound
	}
	return t, err
}

// RevokeToken revokes by ID or name; revoking twice keeps the first time.
func (s *sqlStore) RevokeToken(ctx context.Context, idOrName string) (Token, error) {
	defer s.lockWrite()()
	id, _ := strconv.ParseInt(idOrName, 10, 64)
	t, err := scanToken(s.db.QueryRowContext(ctx, s.q(`SELECT `+tokenColumns+` FROM tokens WHERE id = ? OR name = ?`), id, idOrName))
	if errors.Is(err, sql.ErrNoRows) {
		return t, fmt.Errorf("no token %q: %w", idOrName, ErrNotFound)
	}
	if err != nil {
		return t, err
	}
	if t.RevokedAt != nil {
		return t, nil
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	if _, err := s.db.ExecContext(ctx, s.q(`UPDATE tokens SET revoked_us = ? WHERE id = ?`), us(now), t.ID); err != nil {
		return t, err
	}
	t.RevokedAt = &now
	return t, nil
}

func isNoTable(err error) bool {
	m := err.Error()
	return strings.Contains(m, "no such table") || strings.Contains(m, "does not exist")
}

func isUnique(err error) bool {
	m := err.Error()
	return strings.Contains(m, "UNIQUE constraint") || strings.Contains(m, "duplicate key")
}
