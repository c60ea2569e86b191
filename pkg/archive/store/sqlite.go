package store

import (
	"context"
	"database/sql"
	"fmt"
	"net/url"
	"sync"

	_ "modernc.org/sqlite" // database/sql driver "sqlite", pure Go (no cgo)
)

// openSQLite opens (creating) the SQLite file at path: WAL, synchronous
// FULL (a push acknowledged is on disk), a busy timeout for the readers,
// and immediate write transactions.
func openSQLite(ctx context.Context, path string) (Store, error) {
	if path == "" {
		return nil, fmt.Errorf("sqlite: no file path")
	}
	q := url.Values{}
	for _, p := range []string{"busy_timeout(30000)", "journal_mode(WAL)", "synchronous(FULL)", "foreign_keys(1)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+(&url.URL{Path: path}).EscapedPath()+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	return &sqlStore{db: db, kind: "sqlite", rebind: func(s string) string { return s }, migrations: sqliteMigrations, writeMu: &sync.Mutex{}}, nil
}
