package safetensors

import (
	"encoding/binary"
	"encoding/json"
	"fmt"
	"io"
	"math"
	"sort"
)

// WriteTensor is one tensor to write: float32 values stored as DType
// ("F32", "F16" or "BF16").
type WriteTensor struct {
	Name  string
	DType string
	Shape []int
	Data  []float32
}

// Write writes tensors (in name order) and metadata as a safetensors file.
// The header is padded with spaces to a multiple of 8 bytes, as the
// reference implementation does, so the data section stays aligned.
func Write(w io.Writer, tensors []WriteTensor, metadata map[string]string) error {
	ts := append([]WriteTensor(nil), tensors...)
	sort.Slice(ts, func(i, j int) bool { return ts[i].Name < ts[j].Name })
	header := map[string]any{}
	if len(metadata) > 0 {
		header["__metadata__"] = metadata
	}
	var off int64
	for _, t := range ts {
		size, ok := map[string]int64{"F32": 4, "F16": 2, "BF16": 2}[t.DType]
		if !ok {
			return fmt.Errorf("write tensor %q: unsupported dtype %q (want F32, F16 or BF16)", t.Name, t.DType)
		}
		n := int64(1)
		for _, d := range t.Shape {
			n *= int64(d)
		}
		if n != int64(len(t.Data)) {
			return fmt.Errorf("write tensor %q: shape %v holds %d values, data has %d", t.Name, t.Shape, n, len(t.Data))
		}
		header[t.Name] = map[string]any{"dtype": t.DType, "shape": t.Shape, "data_offsets": []int64{off, off + n*size}}
		off += n * size
	}
	hj, err := json.Marshal(header)
	if err != nil {
		return fmt.Errorf("encode safetensors header: %w", err)
	}
	for len(hj)%8 != 0 {
		hj = append(hj, ' ')
	}
	var lenBuf [8]byte
	binary.LittleEndian.PutUint64(lenBuf[:], uint64(len(hj)))
	if _, err := w.Write(lenBuf[:]); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	if _, err := w.Write(hj); err != nil {
		return fmt.Errorf("write safetensors: %w", err)
	}
	for _, t := range ts {
		var buf []byte
		switch t.DType {
		case "F32":
			buf = make([]byte, 4*len(t.Data))
			for i, v := range t.Data {
				binary.LittleEndian.PutUint32(buf[4*i:], math.Float32bits(v))
			}
		case "F16":
			buf = make([]byte, 2*len(t.Data))
			for i, v := range t.Data {
				binary.LittleEndian.PutUint16(buf[2*i:], F32ToF16(v))
			}
		case "BF16":
			buf = make([]byte, 2*len(t.Data))
			for i, v := range t.Data {
				binary.LittleEndian.PutUint16(buf[2*i:], F32ToBF16(v))
			}
		}
		if _, err := w.Write(buf); err != nil {
			return fmt.Errorf("write safetensors: %w", err)
		}
	}
	return nil
}
