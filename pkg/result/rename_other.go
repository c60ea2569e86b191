//go:build !linux

package result

func renameNoReplace(old, new string) error { return renameReserve(old, new) }
