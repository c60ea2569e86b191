// Package version reports the llem version and the commit it was built from.
// Version is set at link time (-ldflags "-X .../internal/version.Version=v0.1.0");
// the commit comes from BuildCommit or the Go toolchain's embedded VCS stamp.
package version

import "runtime/debug"

// Version of llem; overridden at link time by release builds.
var Version = "0.1.0-dev"

// BuildCommit is set at link time by `make build`
// (-X .../internal/version.BuildCommit=<git describe>), for builds where the
// toolchain's VCS stamp is off (GOFLAGS=-buildvcs=false, as on CI machines).
var BuildCommit string

// Commit returns the VCS revision the binary was built from (with "+dirty"
// when the tree had local changes), or "unknown".
func Commit() string {
	if BuildCommit != "" {
		return BuildCommit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "unknown"
	}
	if dirty {
		rev += "+dirty"
	}
	return rev
}

// String is "llem <version> (<commit>)".
func String() string { return "llem " + Version + " (" + Commit() + ")" }
