package store

// A migration is one numbered schema step, applied once in a transaction
// and recorded in schema_migrations. Never edit a released migration: add
// the next one. Both dialects keep the same numbering.
type migration struct {
	Version int
	Name    string
	SQL     []string
}

// Times are integer microseconds since the Unix epoch (UTC) in both
// dialects: the same comparisons and indexes everywhere.
var sqliteMigrations = []migration{
	{1, "records, tokens", []string{
		`CREATE TABLE records (
			id INTEGER PRIMARY KEY,
			sha256 TEXT NOT NULL UNIQUE,
			received_us INTEGER NOT NULL,
			push_id TEXT NOT NULL,
			token_id INTEGER NOT NULL,
			client TEXT NOT NULL,
			study TEXT NOT NULL,
			study_hash TEXT NOT NULL,
			run_id TEXT NOT NULL,
			config_hash TEXT NOT NULL,
			cycle INTEGER NOT NULL,
			attempt INTEGER NOT NULL,
			model TEXT NOT NULL,
			backend TEXT NOT NULL,
			precision TEXT NOT NULL,
			gpu TEXT NOT NULL,
			fingerprint TEXT NOT NULL,
			llem_version TEXT NOT NULL,
			llem_commit TEXT NOT NULL,
			started_us INTEGER NOT NULL,
			status TEXT NOT NULL,
			verdict TEXT NOT NULL,
			checks TEXT NOT NULL,
			flags TEXT NOT NULL,
			energy_per_output_token_j REAL,
			canonical TEXT NOT NULL
		)`,
		`CREATE TABLE tokens (
			id INTEGER PRIMARY KEY,
			name TEXT NOT NULL UNIQUE,
			hash TEXT NOT NULL UNIQUE,
			scope TEXT NOT NULL,
			rate_per_min INTEGER NOT NULL,
			created_us INTEGER NOT NULL,
			revoked_us INTEGER
		)`,
	}},
	{2, "metadata indexes", indexes},
}

var postgresMigrations = []migration{
	{1, "records, tokens", []string{
		`CREATE TABLE records (
			id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			sha256 TEXT NOT NULL UNIQUE,
			received_us BIGINT NOT NULL,
			push_id TEXT NOT NULL,
			token_id BIGINT NOT NULL,
			client TEXT NOT NULL,
			study TEXT NOT NULL,
			study_hash TEXT NOT NULL,
			run_id TEXT NOT NULL,
			config_hash TEXT NOT NULL,
			cycle INTEGER NOT NULL,
			attempt INTEGER NOT NULL,
			model TEXT NOT NULL,
			backend TEXT NOT NULL,
			precision TEXT NOT NULL,
			gpu TEXT NOT NULL,
			fingerprint TEXT NOT NULL,
			llem_version TEXT NOT NULL,
			llem_commit TEXT NOT NULL,
			started_us BIGINT NOT NULL,
			status TEXT NOT NULL,
			verdict TEXT NOT NULL,
			checks TEXT NOT NULL,
			flags TEXT NOT NULL,
			energy_per_output_token_j DOUBLE PRECISION,
			canonical TEXT NOT NULL,
			-- the record for ad-hoc SQL (record->'energy'->>'raw_j'); canonical
			-- keeps the exact bytes its sha256 covers.
			record JSONB GENERATED ALWAYS AS (canonical::jsonb) STORED
		)`,
		`CREATE TABLE tokens (
			id BIGINT GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
			name TEXT NOT NULL UNIQUE,
			hash TEXT NOT NULL UNIQUE,
			scope TEXT NOT NULL,
			rate_per_min INTEGER NOT NULL,
			created_us BIGINT NOT NULL,
			revoked_us BIGINT
		)`,
	}},
	{2, "metadata indexes", indexes},
}

// indexes serve the filters (each with id, for newest-first pages) and the
// per-configuration grouping.
var indexes = []string{
	`CREATE INDEX records_model ON records (model, id)`,
	`CREATE INDEX records_backend ON records (backend, id)`,
	`CREATE INDEX records_gpu ON records (gpu, id)`,
	`CREATE INDEX records_precision ON records (precision, id)`,
	`CREATE INDEX records_llem_version ON records (llem_version, id)`,
	`CREATE INDEX records_started ON records (started_us, id)`,
	`CREATE INDEX records_study ON records (study, id)`,
	`CREATE INDEX records_run ON records (run_id, id)`,
	`CREATE INDEX records_config ON records (config_hash, gpu, id)`,
}
