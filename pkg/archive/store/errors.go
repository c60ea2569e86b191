package store

import (
	"errors"
	"strings"
	"syscall"
)

// IsFull says whether err is the database running out of disk space
// (SQLite's SQLITE_FULL, PostgreSQL's disk_full, ENOSPC): the push is
// rejected whole and can be repeated once space is freed.
func IsFull(err error) bool {
	if err == nil {
		return false
	}
	if errors.Is(err, syscall.ENOSPC) {
		return true
	}
	m := err.Error()
	return strings.Contains(m, "database or disk is full") || strings.Contains(m, "SQLSTATE 53100") ||
		strings.Contains(m, "No space left on device") || strings.Contains(m, "no space left on device")
}
