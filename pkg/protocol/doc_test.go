package protocol

import (
	"os"
	"strings"
	"testing"
)

// TestDocExamplesValidate keeps docs/worker-protocol.md true: every JSON
// line in its "A complete run" section decodes strictly, and each example
// stream there passes Validate.
func TestDocExamplesValidate(t *testing.T) {
	raw, err := os.ReadFile("../../docs/worker-protocol.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	_, section, ok := strings.Cut(doc, "## 7. A complete run")
	if !ok {
		t.Fatal(`docs/worker-protocol.md has no "## 7. A complete run" section`)
	}
	section, _, _ = strings.Cut(section, "\n## ")
	blocks := strings.Split(section, "```json\n")[1:]
	if len(blocks) != 2 {
		t.Fatalf("want 2 example streams in section 7, found %d", len(blocks))
	}
	for i, b := range blocks {
		b, _, _ = strings.Cut(b, "```")
		dec := NewDecoder(strings.NewReader(b))
		var evs []Event
		for {
			ev, err := dec.Next()
			if err != nil {
				if err.Error() != "EOF" {
					t.Fatalf("example %d: %v", i+1, err)
				}
				break
			}
			evs = append(evs, ev)
		}
		if _, err := Validate(evs); err != nil {
			t.Errorf("example %d: %v", i+1, err)
		}
	}
	// Every other single-line example must decode on its own.
	for _, line := range strings.Split(doc, "\n") {
		if strings.HasPrefix(line, `{"event":`) {
			if _, err := DecodeLine([]byte(line)); err != nil {
				t.Errorf("doc example %s: %v", line, err)
			}
		}
	}
}
