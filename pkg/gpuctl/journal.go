package gpuctl

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// journal is one GPU's settings as llem found them, written (fsync'd)
// before llem changes anything on it and removed once it is restored.
type journal struct {
	UUID    string    `json:"uuid"`
	Index   int       `json:"index"`
	PID     int       `json:"pid"`
	Written time.Time `json:"written"`
	// PowerLimitMW is the power management limit found.
	PowerLimitMW uint32 `json:"power_limit_mw"`
	// AppMemMHz/AppSMMHz are the application clocks found (0: unknown,
	// restored by a reset to the defaults).
	AppMemMHz uint32 `json:"app_mem_mhz,omitempty"`
	AppSMMHz  uint32 `json:"app_sm_mhz,omitempty"`
	// What this session may change: restoring undoes exactly these.
	Limit     bool `json:"limit"`
	LockSM    bool `json:"lock_sm"`
	LockMem   bool `json:"lock_mem"`
	AppClocks bool `json:"app_clocks"`
}

func journalPath(dir, uuid string) string { return filepath.Join(dir, uuid+".json") }
func lockPath(dir, uuid string) string    { return filepath.Join(dir, uuid+".lock") }

// writeJournal writes j atomically: temp file, fsync, rename, fsync dir.
func writeJournal(dir string, j journal) error {
	b, err := json.MarshalIndent(j, "", "  ")
	if err != nil {
		return err
	}
	f, err := os.CreateTemp(dir, ".journal-*")
	if err != nil {
		return fmt.Errorf("gpu journal: %w", err)
	}
	_, err = f.Write(append(b, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), journalPath(dir, j.UUID))
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("gpu journal: %w", err)
	}
	return syncDir(dir)
}

func readJournal(dir, uuid string) (*journal, error) {
	b, err := os.ReadFile(journalPath(dir, uuid))
	if err != nil {
		return nil, err
	}
	var j journal
	if err := json.Unmarshal(b, &j); err != nil {
		return nil, fmt.Errorf("gpu journal %s: %w", journalPath(dir, uuid), err)
	}
	return &j, nil
}

func removeJournal(dir, uuid string) error {
	if err := os.Remove(journalPath(dir, uuid)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return syncDir(dir)
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// journalUUIDs lists the GPUs with a journal in dir.
func journalUUIDs(dir string) []string {
	ents, _ := os.ReadDir(dir)
	var out []string
	for _, e := range ents {
		if n := e.Name(); strings.HasSuffix(n, ".json") && !strings.HasPrefix(n, ".") {
			out = append(out, strings.TrimSuffix(n, ".json"))
		}
	}
	return out
}

// gpuLock is an exclusive lock on one GPU's settings, held by the llem
// that may change them; the kernel drops it when that process dies, so a
// journal whose lock can be taken belongs to a dead process.
type gpuLock struct{ f *os.File }

// errLocked says another live process holds a GPU's lock.
var errLocked = errors.New("locked")

func lockGPU(dir, uuid string) (*gpuLock, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("gpu state dir: %w", err)
	}
	f, err := os.OpenFile(lockPath(dir, uuid), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("gpu lock: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, errLocked
		}
		return nil, fmt.Errorf("gpu lock: %w", err)
	}
	return &gpuLock{f: f}, nil
}

func (l *gpuLock) release() {
	if l != nil && l.f != nil {
		l.f.Close() // closing drops the flock
		l.f = nil
	}
}
