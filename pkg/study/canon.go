package study

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// canonicalJSON re-encodes JSON so that equal configs give equal bytes on
// every machine: object keys sorted, no insignificant space, and numbers
// normalised (1.0 and 1 are the same value, so both print as 1). Integers
// keep their digits exactly; other numbers print in Go's shortest form.
func canonicalJSON(in []byte) ([]byte, error) {
	dec := json.NewDecoder(bytes.NewReader(in))
	dec.UseNumber()
	var v any
	if err := dec.Decode(&v); err != nil {
		return nil, fmt.Errorf("decode config json: %w", err)
	}
	var b bytes.Buffer
	b.Grow(len(in))
	if err := writeCanonical(&b, v); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeCanonical(b *bytes.Buffer, v any) error {
	switch x := v.(type) {
	case nil:
		b.WriteString("null")
	case bool:
		b.WriteString(strconv.FormatBool(x))
	case json.Number:
		b.WriteString(canonicalNumber(string(x)))
	case float64:
		b.WriteString(canonicalNumber(strconv.FormatFloat(x, 'g', -1, 64)))
	case int:
		b.WriteString(strconv.Itoa(x))
	case int64:
		b.WriteString(strconv.FormatInt(x, 10))
	case uint64:
		b.WriteString(strconv.FormatUint(x, 10))
	case string:
		writeString(b, x)
	case []any:
		b.WriteByte('[')
		for i, e := range x {
			if i > 0 {
				b.WriteByte(',')
			}
			if err := writeCanonical(b, e); err != nil {
				return err
			}
		}
		b.WriteByte(']')
	case map[string]any:
		keys := make([]string, 0, len(x))
		for k := range x {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		b.WriteByte('{')
		for i, k := range keys {
			if i > 0 {
				b.WriteByte(',')
			}
			writeString(b, k)
			b.WriteByte(':')
			if err := writeCanonical(b, x[k]); err != nil {
				return err
			}
		}
		b.WriteByte('}')
	default:
		j, err := json.Marshal(v) // rare types (e.g. *big.Int from CUE)
		if err != nil {
			return fmt.Errorf("encode canonical json: %w", err)
		}
		c, err := canonicalJSON(j)
		if err != nil {
			return err
		}
		b.Write(c)
	}
	return nil
}

// writeString writes s as a JSON string; plain ASCII is written directly,
// anything else through encoding/json (same escaping as json.Marshal).
func writeString(b *bytes.Buffer, s string) {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 || c >= 0x7f || c == '"' || c == '\\' || c == '<' || c == '>' || c == '&' {
			j, _ := json.Marshal(s) // a Go string always marshals
			b.Write(j)
			return
		}
	}
	b.WriteByte('"')
	b.WriteString(s)
	b.WriteByte('"')
}

// canonicalNumber prints integers as integers (also 1.0 and 1e3) and other
// numbers in the shortest float64 form.
func canonicalNumber(s string) string {
	if !strings.ContainsAny(s, ".eE") {
		if s == "-0" {
			return "0"
		}
		return s
	}
	f, err := strconv.ParseFloat(s, 64)
	if err != nil || math.IsInf(f, 0) || math.IsNaN(f) {
		return s
	}
	if f == math.Trunc(f) && math.Abs(f) < 1e15 {
		return strconv.FormatInt(int64(f), 10)
	}
	return strconv.FormatFloat(f, 'g', -1, 64)
}

// hashHex returns the hex sha256 of b.
func hashHex(b []byte) string {
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// ConfigHash is the hash a run's effective config gets (Run.Hash, a
// record's config_hash): the sha256 of the config's canonical JSON. The
// archive server recomputes it to check a pushed record's config_hash.
func ConfigHash(config []byte) (string, error) {
	canon, err := canonicalJSON(config)
	if err != nil {
		return "", err
	}
	return hashHex(canon), nil
}
