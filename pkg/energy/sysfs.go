package energy

import "os"

// SysfsRootEnv names the environment variable that moves every sysfs-based
// sensor (RAPL, hwmon) to another root: a container that mounts the host's
// /sys elsewhere, or a test that points llem at a recorded sysfs tree
// (pkg/energy/testdata/sysfs). Unset or empty means "/sys".
const SysfsRootEnv = "LLEM_SYSFS_ROOT"

// SysfsRoot returns the sysfs root: $LLEM_SYSFS_ROOT, else "/sys".
func SysfsRoot() string {
	if r := os.Getenv(SysfsRootEnv); r != "" {
		return r
	}
	return "/sys"
}
