package safetensors

import (
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"os"
	"path/filepath"
	"testing"
)

func header(json string, data int) []byte {
	b := make([]byte, 8, 8+len(json)+data)
	binary.LittleEndian.PutUint64(b, uint64(len(json)))
	b = append(b, json...)
	return append(b, make([]byte, data)...)
}

func TestParseHeaderValid(t *testing.T) {
	b := header(`{"__metadata__":{"format":"pt"},"b":{"dtype":"F16","shape":[2,3],"data_offsets":[16,28]},"a":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"s":{"dtype":"BF16","shape":[],"data_offsets":[28,30]}}`, 30)
	h, err := ParseHeader(b, int64(len(b)))
	if err != nil {
		t.Fatal(err)
	}
	if len(h.Tensors) != 3 || h.Tensors[0].Name != "a" || h.Tensors[1].Name != "b" || h.Tensors[2].Name != "s" {
		t.Fatalf("tensors = %+v, want a, b, s sorted by offset", h.Tensors)
	}
	if h.Metadata["format"] != "pt" {
		t.Errorf("metadata = %v", h.Metadata)
	}
	if got := h.Tensors[2].NumElements(); got != 1 {
		t.Errorf("scalar elements = %d, want 1", got)
	}
	if tt, ok := h.Find("b"); !ok || tt.Shape[1] != 3 || tt.DType != "F16" {
		t.Errorf("Find(b) = %+v, %v", tt, ok)
	}
}

func TestParseHeaderRejects(t *testing.T) {
	cases := []struct {
		name string
		b    []byte
	}{
		{"short", []byte{1, 2, 3}},
		{"huge length", func() []byte { b := make([]byte, 16); binary.LittleEndian.PutUint64(b, 1<<40); return b }()},
		{"length past end", func() []byte { b := header(`{}`, 0); binary.LittleEndian.PutUint64(b, 100); return b }()},
		{"not json", header(`{"a":`, 0)},
		{"not object", header(`[1,2]`, 0)},
		{"unknown dtype", header(`{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,16]}}`, 16)},
		{"missing shape", header(`{"a":{"dtype":"F32","data_offsets":[0,4]}}`, 4)},
		{"bad offsets arity", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[0]}}`, 4)},
		{"end before begin", header(`{"a":{"dtype":"F32","shape":[1],"data_offsets":[4,0]}}`, 4)},
		{"past data", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 4)},
		{"negative dim", header(`{"a":{"dtype":"F32","shape":[-1],"data_offsets":[0,4]}}`, 4)},
		{"size mismatch", header(`{"a":{"dtype":"F32","shape":[3],"data_offsets":[0,8]}}`, 8)},
		{"overflow", header(`{"a":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,0]}}`, 0)},
		{"overlap", header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]},"b":{"dtype":"F32","shape":[2],"data_offsets":[4,12]}}`, 12)},
		{"bad metadata", header(`{"__metadata__":{"x":1}}`, 0)},
		{"float dim", header(`{"a":{"dtype":"F32","shape":[1.5],"data_offsets":[0,4]}}`, 4)},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseHeader(c.b, int64(len(c.b)))
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
}

func TestWriteReadRoundTrip(t *testing.T) {
	vals := []float32{0, 1, -2.5, 0.1, 3e-5, -65504, 1e-8, 0.333}
	for _, dt := range []string{"F32", "F16", "BF16"} {
		t.Run(dt, func(t *testing.T) {
			var buf bytes.Buffer
			err := Write(&buf, []WriteTensor{
				{Name: "w", DType: dt, Shape: []int{2, 4}, Data: vals},
				{Name: "b", DType: dt, Shape: []int{1}, Data: []float32{7}},
			}, map[string]string{"format": "pt"})
			if err != nil {
				t.Fatal(err)
			}
			if (binary.LittleEndian.Uint64(buf.Bytes()) % 8) != 0 {
				t.Errorf("header length not padded to 8")
			}
			path := filepath.Join(t.TempDir(), "m.safetensors")
			if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
				t.Fatal(err)
			}
			f, err := Open(path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			tt, ok := f.Header.Find("w")
			if !ok || tt.DType != dt {
				t.Fatalf("tensor w = %+v", tt)
			}
			got, err := f.Float32(tt)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range vals {
				want := v
				switch dt {
				case "F16":
					want = F16ToF32(F32ToF16(v))
				case "BF16":
					want = BF16ToF32(F32ToBF16(v))
				}
				if got[i] != want {
					t.Errorf("%s[%d] = %v, want %v", dt, i, got[i], want)
				}
				if rel := math.Abs(float64(got[i]-v)) / math.Max(math.Abs(float64(v)), 1e-3); dt != "F32" && rel > 1e-2 {
					t.Errorf("%s[%d] = %v too far from %v", dt, i, got[i], v)
				}
			}
		})
	}
}

func TestF16Exhaustive(t *testing.T) {
	for h := 0; h < 1<<16; h++ {
		f := F16ToF32(uint16(h))
		if f != f { // NaN
			if back := F32ToF16(f); back&0x7c00 != 0x7c00 || back&0x3ff == 0 {
				t.Fatalf("NaN %#04x -> %#04x", h, back)
			}
			continue
		}
		if back := F32ToF16(f); back != uint16(h) {
			t.Fatalf("F32ToF16(F16ToF32(%#04x)=%v) = %#04x", h, f, back)
		}
	}
}

func TestRounding(t *testing.T) {
	cases := []struct {
		f    float32
		want uint16
		bf   bool
	}{
		{1, 0x3c00, false},
		{65504, 0x7bff, false},
		{65520, 0x7c00, false},        // rounds up to +Inf
		{5.9604645e-8, 0x0001, false}, // smallest subnormal
		{2.9802322e-8, 0x0000, false}, // half of it: tie to even (0)
		{1 + 1.0/2048, 0x3c00, false}, // tie between 1 and 1+2^-10 -> even
		{1 + 3.0/2048, 0x3c02, false}, // tie -> even (up)
		{-2, 0xc000, false},
		{1, 0x3f80, true},
		{1 + 1.0/256, 0x3f80, true}, // tie -> even (down)
		{1 + 3.0/256, 0x3f82, true}, // tie -> even (up)
		{float32(math.Inf(-1)), 0xff80, true},
	}
	for _, c := range cases {
		var got uint16
		if c.bf {
			got = F32ToBF16(c.f)
		} else {
			got = F32ToF16(c.f)
		}
		if got != c.want {
			t.Errorf("bf16=%v convert(%v) = %#04x, want %#04x", c.bf, c.f, got, c.want)
		}
	}
}

func TestToFloat32Unsupported(t *testing.T) {
	if _, err := ToFloat32([]byte{1, 2, 3, 4}, "I32"); err == nil {
		t.Fatal("I32 conversion succeeded, want error")
	}
}

// FuzzSafetensorsHeader feeds arbitrary bytes to the header parser: it must
// never panic, and whatever it accepts must satisfy the invariants the loader
// relies on (ranges inside the file, sizes matching shapes, no overlap).
func FuzzSafetensorsHeader(f *testing.F) {
	f.Add(header(`{"a":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}}`, 8))
	f.Add(header(`{"__metadata__":{"format":"pt"},"x":{"dtype":"BF16","shape":[1,2],"data_offsets":[0,4]}}`, 4))
	f.Add(header(`{"a":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,0]}}`, 0))
	f.Add([]byte{0, 0, 0, 0, 0, 0, 0, 0})
	f.Fuzz(func(t *testing.T, b []byte) {
		h, err := ParseHeader(b, int64(len(b)))
		if err != nil {
			if !errors.Is(err, ErrInvalid) {
				t.Fatalf("error %v does not wrap ErrInvalid", err)
			}
			return
		}
		dataLen := int64(len(b)) - h.DataOffset
		var prevEnd int64
		for i, tt := range h.Tensors {
			if tt.Begin < 0 || tt.End < tt.Begin || tt.End > dataLen {
				t.Fatalf("tensor %q range [%d,%d] outside %d", tt.Name, tt.Begin, tt.End, dataLen)
			}
			if tt.NumElements()*dtypeSize[tt.DType] != tt.End-tt.Begin {
				t.Fatalf("tensor %q size mismatch", tt.Name)
			}
			if i > 0 && tt.Begin < prevEnd {
				t.Fatalf("tensor %q overlaps", tt.Name)
			}
			prevEnd = tt.End
		}
	})
}
