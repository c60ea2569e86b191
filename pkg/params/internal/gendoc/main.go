// Command gendoc writes docs/params.md from the schema: the same output as
// `llem params --markdown`, without building the whole CLI. Run it with
// `go generate ./pkg/params`.
package main

import (
	"bytes"
	"fmt"
	"os"

	"github.com/llenergymeasure/llem/pkg/params"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gendoc OUTPUT.md")
		os.Exit(2)
	}
	reports, err := params.Reports()
	if err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
	var buf bytes.Buffer
	if err := params.WriteMarkdown(&buf, reports); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
	if err := os.WriteFile(os.Args[1], buf.Bytes(), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "gendoc:", err)
		os.Exit(1)
	}
}
