package runner

import (
	"context"
	"strings"
	"testing"
)

// The local runner's behaviour with misbehaving workers is checked by the
// conformance suite (conformance_test.go); these are its own cases.

func TestLocalRunMissingCommand(t *testing.T) {
	t.Parallel()
	_, err := NewLocal().Run(context.Background(), Job{Command: []string{"/nonexistent/llem-worker"}}, nil)
	if err == nil || !strings.Contains(err.Error(), "start worker") {
		t.Fatalf("err = %v, want a start error", err)
	}
}

func TestLocalRunEmptyCommand(t *testing.T) {
	t.Parallel()
	_, err := NewLocal().Run(context.Background(), Job{}, nil)
	if err == nil || !strings.Contains(err.Error(), "empty command") {
		t.Fatalf("err = %v, want an empty-command error", err)
	}
}

func TestTailBuffer(t *testing.T) {
	t.Parallel()
	tb := newTailBuffer(16)
	tb.Write([]byte("line one\nline two\nline three\n"))
	if got := tb.String(); got != "line three" {
		t.Fatalf("tail = %q", got)
	}
	// Short output is kept whole; invalid UTF-8 (a cut multi-byte rune)
	// never reaches an error report.
	tb = newTailBuffer(16)
	tb.Write([]byte("ok\xff\n"))
	if got := tb.String(); got != "ok" {
		t.Fatalf("tail = %q", got)
	}
	// One write longer than the buffer keeps its end.
	tb = newTailBuffer(8)
	if n, _ := tb.Write([]byte("aaaaaaaaaa\nbbbb\n")); n != 16 {
		t.Fatalf("Write returned %d, want 16", n)
	}
	if got := tb.String(); got != "bbbb" {
		t.Fatalf("tail = %q", got)
	}
}
