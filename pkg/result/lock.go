package result

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// LockFile is the study directory's writer lock. Exactly one process may
// write a study directory (run, resume or repair it); readers never take
// it. The file's content says who holds it, for the error a second writer
// sees and for llem results ls.
const LockFile = ".llem.lock"

// LockHolder is who holds (or last held) a study directory's lock.
type LockHolder struct {
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	Command string    `json:"command"`
	Since   time.Time `json:"since"`
}

func (h LockHolder) String() string {
	s := fmt.Sprintf("pid %d", h.PID)
	if h.Host != "" {
		s += " on " + h.Host
	}
	if h.Command != "" {
		s += " (" + h.Command + ")"
	}
	if !h.Since.IsZero() {
		s += ", since " + h.Since.UTC().Format(time.RFC3339)
	}
	return s
}

// LockedError is returned when another process holds a study directory's
// writer lock.
type LockedError struct {
	Dir    string
	Holder LockHolder
}

func (e *LockedError) Error() string {
	return fmt.Sprintf("study directory %s is in use by another llem: %s", e.Dir, e.Holder)
}

// Hint says what to do about it.
func (e *LockedError) Hint() string {
	return "wait for that llem to finish (or stop it with Ctrl-C), then run the command again"
}

// dirLock is a held writer lock.
type dirLock struct{ f *os.File }

// lockStudyDir takes dir's writer lock without waiting and records this
// process as its holder. The lock is an open-file-description record lock
// (fcntl F_OFD_SETLK on Linux, flock elsewhere): released by the kernel when
// the process dies however it dies, so a kill -9 never leaves a stale lock,
// and on Linux it is also honoured by NFS servers.
func lockStudyDir(dir string) (*dirLock, error) {
	f, err := os.OpenFile(filepath.Join(dir, LockFile), os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("lock study directory: %w", err)
	}
	ok, err := tryLock(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock study directory %s: %w", dir, err)
	}
	if !ok {
		h, _ := readHolder(f)
		f.Close()
		return nil, &LockedError{Dir: dir, Holder: h}
	}
	host, _ := os.Hostname()
	h := LockHolder{PID: os.Getpid(), Host: host, Command: commandLine(), Since: time.Now().UTC()}
	b, _ := json.Marshal(h)
	if err := f.Truncate(0); err == nil {
		f.WriteAt(append(b, '\n'), 0)
	}
	return &dirLock{f: f}, nil
}

func (l *dirLock) release() {
	if l != nil && l.f != nil {
		l.f.Close() // closing the description releases the lock
		l.f = nil
	}
}

// LockState says whether a study directory's writer lock is held now and by
// whom (the last holder when free). It only reads: it opens the lock file
// read-only, tests the lock without taking it, and creates nothing.
func LockState(dir string) (held bool, holder LockHolder, err error) {
	f, err := os.Open(filepath.Join(dir, LockFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return false, LockHolder{}, nil
		}
		return false, LockHolder{}, err
	}
	defer f.Close()
	holder, _ = readHolder(f)
	held, err = isLocked(f)
	return held, holder, err
}

func readHolder(f *os.File) (LockHolder, error) {
	var h LockHolder
	b := make([]byte, 4096)
	n, _ := f.ReadAt(b, 0)
	err := json.Unmarshal([]byte(strings.TrimSpace(string(b[:n]))), &h)
	return h, err
}

func commandLine() string {
	args := os.Args
	if len(args) > 4 {
		args = args[:4]
	}
	if len(args) > 0 {
		args = append([]string{filepath.Base(args[0])}, args[1:]...)
	}
	s := strings.Join(args, " ")
	if len(s) > 200 {
		s = s[:200]
	}
	return s
}
