package store

import (
	"context"
	"database/sql"
	"fmt"
	"strconv"
	"strings"

	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx"
)

// openPostgres connects to PostgreSQL (the url is pgx's: postgres://user@host:port/db?sslmode=…,
// or host=/socket/dir for a unix socket).
func openPostgres(ctx context.Context, url string) (Store, error) {
	db, err := sql.Open("pgx", url)
	if err != nil {
		return nil, fmt.Errorf("postgres: %w", err)
	}
	db.SetMaxOpenConns(32)
	db.SetMaxIdleConns(32)
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("postgres: %w", err)
	}
	return &sqlStore{db: db, kind: "postgres", rebind: dollarParams, migrations: postgresMigrations,
		lockMigrations: func(ctx context.Context, tx *sql.Tx) error {
			// One migrating process at a time, whatever else is connected.
			_, err := tx.ExecContext(ctx, `SELECT pg_advisory_xact_lock(7211)`)
			return err
		}}, nil
}

// dollarParams rewrites ? placeholders as $1, $2, … (queries here hold no
// literal question marks).
func dollarParams(q string) string {
	var b strings.Builder
	n := 0
	for _, c := range q {
		if c == '?' {
			n++
			b.WriteString("$" + strconv.Itoa(n))
			continue
		}
		b.WriteRune(c)
	}
	return b.String()
}
