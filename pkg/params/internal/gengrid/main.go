// Command gengrid writes schema/grids_gen.cue (params.GridCUE) from the
// backend sections of the schema. Run it with `go generate ./pkg/params`.
package main

import (
	"fmt"
	"os"

	"github.com/llenergymeasure/llem/pkg/params"
)

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: gengrid OUTPUT.cue")
		os.Exit(2)
	}
	s, err := params.Default()
	if err == nil {
		var out []byte
		if out, err = s.GridCUE(params.BackendNames()); err == nil {
			err = os.WriteFile(os.Args[1], out, 0o644)
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "gengrid:", err)
		os.Exit(1)
	}
}
