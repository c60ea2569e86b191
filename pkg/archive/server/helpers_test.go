package server_test

import (
	"bytes"
	"encoding/base64"
	"io"
	"log/slog"
	"sync"
)

// syncBuffer is a log sink safe for the server's goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func newJSONLogger(w io.Writer) *slog.Logger { return slog.New(slog.NewJSONHandler(w, nil)) }

// basic is the HTTP Basic credential a browser sends: any user, the token
// as the password.
func basic(token string) string {
	return base64.StdEncoding.EncodeToString([]byte("me:" + token))
}
