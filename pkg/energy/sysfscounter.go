package energy

import (
	"fmt"
	"io"
	"io/fs"
	"math"

	"github.com/llenergymeasure/llem/pkg/clock"
)

// What the sysfs sensors (rapl.go, hwmon.go) share besides their root
// (sysfs.go): reading a small
// decimal file, unwrapping a cumulative µJ counter, and the per-channel
// loop of Read with its per-channel errors.

// readUintFile reads the unsigned decimal in a small sysfs file: pread at
// 0 on f, kept open, when it supports ReadAt (no allocation per sample),
// else a fresh open of name on fsys (file systems whose files cannot
// ReadAt, such as fstest.MapFS in tests).
func readUintFile(fsys fs.FS, f fs.File, buf []byte, name string) (uint64, error) {
	if ra, ok := f.(io.ReaderAt); ok {
		n, err := ra.ReadAt(buf, 0)
		if err != nil && err != io.EOF {
			return 0, err
		}
		return parseUint(buf[:n], name)
	}
	g, err := fsys.Open(name)
	if err != nil {
		return 0, err
	}
	defer g.Close()
	n, err := io.ReadFull(g, buf)
	if err != nil && err != io.ErrUnexpectedEOF && err != io.EOF {
		return 0, err
	}
	return parseUint(buf[:n], name)
}

// ujCounter unwraps a cumulative µJ counter (RAPL energy_uj, hwmon
// energyN_input) into the energy since its first reading.
type ujCounter struct {
	last    uint64
	lastT   int64
	cum     uint64 // unwrapped µJ since the first reading
	started bool
}

// add takes the reading v at now; step is the counter's increase from last
// to v under the sensor's wrap rule (called only once a reading exists).
// It returns the mean power since the previous reading: NaN for the first
// reading or when no time passed.
func (c *ujCounter) add(v uint64, now int64, step func(last, v uint64) uint64) float64 {
	p := math.NaN()
	if c.started {
		d := step(c.last, v)
		c.cum += d
		if dt := now - c.lastT; dt > 0 {
			p = float64(d) / 1e6 / (float64(dt) / 1e9)
		}
	}
	c.started, c.last, c.lastT = true, v, now
	return p
}

// energyJ is the unwrapped energy since the first reading.
func (c *ujCounter) energyJ() float64 { return float64(c.cum) / 1e6 }

// readChannels is the loop of a sysfs sensor's Read over n channels: read
// channel i's raw value, stamp dst[i] right after, and fill it; a channel
// whose read fails keeps a NaN sample and its error (named by what(i)) in
// the returned ChannelErrors, the others are still read.
func readChannels(dst []Sample, n int, read func(i int) (uint64, error), what func(i int) string, fill func(i int, v uint64, now int64, s *Sample)) error {
	var errs []*ChannelError
	for i := range n {
		v, err := read(i)
		now := clock.Now()
		dst[i].Reset(now)
		if err != nil {
			if errs == nil {
				errs = make([]*ChannelError, n)
			}
			errs[i] = &ChannelError{Index: i, Err: fmt.Errorf("read %s: %w", what(i), err)}
			continue
		}
		fill(i, v, now, &dst[i])
	}
	if errs == nil {
		return nil
	}
	return JoinChannelErrors(errs)
}
