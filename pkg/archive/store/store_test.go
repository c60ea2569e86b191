package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/llenergymeasure/llem/internal/pgtest"
	"github.com/llenergymeasure/llem/pkg/archive/store"
	"github.com/llenergymeasure/llem/pkg/archive/store/storetest"
)

func openMigrated(t *testing.T, url string) store.Store {
	t.Helper()
	s, err := store.Open(context.Background(), url)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if _, err := s.Migrate(context.Background()); err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSQLite(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return openMigrated(t, filepath.Join(t.TempDir(), "archive.db"))
	})
}

func TestPostgres(t *testing.T) {
	pg := pgtest.Start(t)
	storetest.Run(t, func(t *testing.T) store.Store {
		return openMigrated(t, pg.NewDatabase(t))
	})
}
