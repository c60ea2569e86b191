// Package safetensors reads and writes the Hugging Face safetensors format:
// an 8-byte little-endian header length, a JSON header naming every tensor's
// dtype, shape and byte range, then the raw little-endian tensor bytes.
//
// The header comes from files a user downloaded, so ParseHeader treats it as
// hostile: bounded size, known dtypes, shapes whose element count matches the
// byte range without overflow, ranges inside the data section and not
// overlapping. The reader converts F32, F16 and BF16 to float32 on load,
// which is what the native engine computes in.
package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"sort"
)

// MaxHeaderBytes bounds the JSON header, as the reference Rust implementation
// does (100 MB), so a corrupt length cannot make us allocate gigabytes.
const MaxHeaderBytes = 100 << 20

// ErrInvalid is wrapped by every error about a malformed file.
var ErrInvalid = errors.New("invalid safetensors file")

// Tensor describes one tensor of a file. Begin and End are byte offsets into
// the data section (after the header).
type Tensor struct {
	Name  string
	DType string // "F32", "F16", "BF16", "F64", "I64", ...
	Shape []int
	Begin int64
	End   int64
}

// NumElements is the product of the shape (1 for a scalar).
func (t Tensor) NumElements() int64 {
	n := int64(1)
	for _, d := range t.Shape {
		n *= int64(d)
	}
	return n
}

// Header is the parsed header of one file.
type Header struct {
	// Tensors sorted by Begin.
	Tensors  []Tensor
	Metadata map[string]string
	// DataOffset is where the data section starts in the file (8 + header length).
	DataOffset int64
}

// Find returns the tensor with the given name.
func (h *Header) Find(name string) (Tensor, bool) {
	for _, t := range h.Tensors {
		if t.Name == name {
			return t, true
		}
	}
	return Tensor{}, false
}

// dtypeSize is the byte width of every dtype the format defines.
var dtypeSize = map[string]int64{
	"BOOL": 1, "U8": 1, "I8": 1, "F8_E5M2": 1, "F8_E4M3": 1,
	"I16": 2, "U16": 2, "F16": 2, "BF16": 2,
	"I32": 4, "U32": 4, "F32": 4,
	"I64": 8, "U64": 8, "F64": 8,
}

type rawEntry struct {
	DType       *string  `json:"dtype"`
	Shape       *[]int64 `json:"shape"`
	DataOffsets *[]int64 `json:"data_offsets"`
}

func invalid(format string, a ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, a...))
}

// ParseHeader parses the first bytes of a safetensors file. prefix must hold
// at least the 8-byte length and the JSON header; fileSize is the size of
// the whole file, against which every tensor's byte range is checked.
func ParseHeader(prefix []byte, fileSize int64) (*Header, error) {
	if len(prefix) < 8 || fileSize < 8 {
		return nil, invalid("file shorter than the 8-byte header length")
	}
	n := binary.LittleEndian.Uint64(prefix[:8])
	if n > MaxHeaderBytes {
		return nil, invalid("header length %d exceeds the %d-byte limit", n, MaxHeaderBytes)
	}
	if int64(n) > fileSize-8 {
		return nil, invalid("header length %d runs past the end of the %d-byte file", n, fileSize)
	}
	if uint64(len(prefix)-8) < n {
		return nil, invalid("header truncated: have %d of %d bytes", len(prefix)-8, n)
	}
	raw := prefix[8 : 8+n]
	var entries map[string]json.RawMessage
	if err := json.Unmarshal(raw, &entries); err != nil {
		return nil, invalid("header is not a JSON object: %v", err)
	}
	h := &Header{DataOffset: 8 + int64(n)}
	dataLen := fileSize - h.DataOffset
	for name, msg := range entries {
		if name == "__metadata__" {
			if err := json.Unmarshal(msg, &h.Metadata); err != nil {
				return nil, invalid("__metadata__ must map strings to strings: %v", err)
			}
			continue
		}
		var e rawEntry
		if err := json.Unmarshal(msg, &e); err != nil {
			return nil, invalid("tensor %q: %v", name, err)
		}
		if e.DType == nil || e.Shape == nil || e.DataOffsets == nil {
			return nil, invalid("tensor %q: dtype, shape and data_offsets are all required", name)
		}
		size, ok := dtypeSize[*e.DType]
		if !ok {
			return nil, invalid("tensor %q: unknown dtype %q", name, *e.DType)
		}
		offs := *e.DataOffsets
		if len(offs) != 2 {
			return nil, invalid("tensor %q: data_offsets must have 2 entries, has %d", name, len(offs))
		}
		begin, end := offs[0], offs[1]
		if begin < 0 || end < begin || end > dataLen {
			return nil, invalid("tensor %q: data_offsets [%d, %d] outside the %d-byte data section", name, begin, end, dataLen)
		}
		shape := make([]int, len(*e.Shape))
		count := int64(1)
		for i, d := range *e.Shape {
			if d < 0 {
				return nil, invalid("tensor %q: negative dimension %d", name, d)
			}
			// Overflow guard: count*size must stay representable.
			if d != 0 && count > (math.MaxInt64/size)/d {
				return nil, invalid("tensor %q: shape %v overflows", name, *e.Shape)
			}
			count *= d
			shape[i] = int(d)
		}
		if count*size != end-begin {
			return nil, invalid("tensor %q: shape %v of %s needs %d bytes, data_offsets give %d", name, *e.Shape, *e.DType, count*size, end-begin)
		}
		h.Tensors = append(h.Tensors, Tensor{Name: name, DType: *e.DType, Shape: shape, Begin: begin, End: end})
	}
	sort.Slice(h.Tensors, func(i, j int) bool {
		if h.Tensors[i].Begin != h.Tensors[j].Begin {
			return h.Tensors[i].Begin < h.Tensors[j].Begin
		}
		return h.Tensors[i].Name < h.Tensors[j].Name
	})
	for i := 1; i < len(h.Tensors); i++ {
		prev, cur := h.Tensors[i-1], h.Tensors[i]
		if cur.Begin < prev.End {
			return nil, invalid("tensors %q and %q overlap", prev.Name, cur.Name)
		}
	}
	return h, nil
}

// File is an open safetensors file.
type File struct {
	Header *Header
	f      *os.File
	path   string
}

// Open reads and validates the header of the file at path.
func Open(path string) (*File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("open safetensors: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("stat safetensors: %w", err)
	}
	var lenBuf [8]byte
	if _, err := io.ReadFull(f, lenBuf[:]); err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, invalid("file shorter than the 8-byte header length"))
	}
	n := binary.LittleEndian.Uint64(lenBuf[:])
	if n > MaxHeaderBytes || int64(n) > st.Size()-8 {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, invalid("header length %d does not fit the %d-byte file", n, st.Size()))
	}
	prefix := make([]byte, 8+n)
	copy(prefix, lenBuf[:])
	if _, err := io.ReadFull(f, prefix[8:]); err != nil {
		f.Close()
		return nil, fmt.Errorf("read header of %s: %w", path, err)
	}
	h, err := ParseHeader(prefix, st.Size())
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("read %s: %w", path, err)
	}
	return &File{Header: h, f: f, path: path}, nil
}

// Close closes the underlying file.
func (f *File) Close() error { return f.f.Close() }

// Float32 reads tensor t and converts it to float32 (F32, F16, BF16 and F64
// are accepted).
func (f *File) Float32(t Tensor) ([]float32, error) {
	buf := make([]byte, t.End-t.Begin)
	if _, err := f.f.ReadAt(buf, f.Header.DataOffset+t.Begin); err != nil {
		return nil, fmt.Errorf("read tensor %q from %s: %w", t.Name, f.path, err)
	}
	out, err := ToFloat32(buf, t.DType)
	if err != nil {
		return nil, fmt.Errorf("read tensor %q from %s: %w", t.Name, f.path, err)
	}
	return out, nil
}

// ToFloat32 converts little-endian raw bytes of the given dtype to float32.
func ToFloat32(b []byte, dtype string) ([]float32, error) {
	switch dtype {
	case "F32":
		out := make([]float32, len(b)/4)
		for i := range out {
			out[i] = math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:]))
		}
		return out, nil
	case "F16":
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = F16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case "BF16":
		out := make([]float32, len(b)/2)
		for i := range out {
			out[i] = BF16ToF32(binary.LittleEndian.Uint16(b[2*i:]))
		}
		return out, nil
	case "F64":
		out := make([]float32, len(b)/8)
		for i := range out {
			out[i] = float32(math.Float64frombits(binary.LittleEndian.Uint64(b[8*i:])))
		}
		return out, nil
	}
	return nil, fmt.Errorf("convert dtype %s to float32: unsupported (want F32, F16, BF16 or F64)", dtype)
}
