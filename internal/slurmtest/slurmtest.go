// Package slurmtest starts a real single-machine Slurm cluster for tests:
// munged, slurmctld and two or more slurmd with distinct NodeNames (so
// array tasks really run in parallel on "different nodes"), every file in
// a scratch directory. It needs slurm-wlm and munge (Debian packages) and
// root; tests skip without them locally and fail under CI=true, like
// internal/dockertest.
package slurmtest

import (
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// Cluster is a running test cluster. Env holds what a client (sbatch,
// squeue, scontrol, scancel) needs: SLURM_CONF.
type Cluster struct {
	Dir       string
	Conf      string
	Nodes     []string
	Partition string
	Env       []string
}

// Options shape the cluster.
type Options struct {
	// Nodes is the number of slurmd (default 2), each with CPUs CPUs
	// (default 1, so one task per node at a time).
	Nodes int
	CPUs  int
}

// Start starts a cluster for t and stops it (and every job on it) at the
// end of the test. It sets SLURM_CONF for the test process, so the Slurm
// clients the code under test runs talk to this cluster.
func Start(t testing.TB, o Options) *Cluster {
	t.Helper()
	if o.Nodes == 0 {
		o.Nodes = 2
	}
	if o.CPUs == 0 {
		o.CPUs = 1
	}
	for _, bin := range []string{"munged", "slurmctld", "slurmd", "sbatch", "squeue", "scontrol", "scancel"} {
		if _, err := exec.LookPath(bin); err != nil {
			unavailable(t, bin+" not found (apt-get install -y slurm-wlm munge)")
		}
	}
	if os.Geteuid() != 0 {
		unavailable(t, "the test cluster runs its daemons as root")
	}
	dir, err := os.MkdirTemp("", "llem-slurm-")
	if err != nil {
		t.Fatal(err)
	}
	// slurmd refuses a world-writable or deep spool path on some builds;
	// a short private path under /tmp is safest.
	os.Chmod(dir, 0o755)
	for _, d := range []string{"state", "spool", "log", "run", "munge"} {
		if err := os.MkdirAll(filepath.Join(dir, d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	c := &Cluster{Dir: dir, Conf: filepath.Join(dir, "slurm.conf"), Partition: "debug"}
	host, _ := os.Hostname()
	ctlPort := freePort(t)

	// munged: its own key and socket; --force because the scratch
	// directory's parents are not owned by munge's expected user.
	key := filepath.Join(dir, "munge", "munge.key")
	if err := os.WriteFile(key, []byte(strings.Repeat("llem-slurmtest-key-", 64)), 0o400); err != nil {
		t.Fatal(err)
	}
	sock := filepath.Join(dir, "munge", "munge.socket")
	munged := exec.Command("munged", "--force", "--key-file="+key, "--socket="+sock,
		"--pid-file="+filepath.Join(dir, "munge", "munged.pid"), "--log-file="+filepath.Join(dir, "log", "munged.log"),
		"--seed-file="+filepath.Join(dir, "munge", "munge.seed"))
	if out, err := munged.CombinedOutput(); err != nil {
		t.Fatalf("munged: %v\n%s", err, out)
	}

	var nodes strings.Builder
	for i := 1; i <= o.Nodes; i++ {
		name := fmt.Sprintf("n%d", i)
		c.Nodes = append(c.Nodes, name)
		fmt.Fprintf(&nodes, "NodeName=%s NodeHostname=%s NodeAddr=127.0.0.1 Port=%d CPUs=%d RealMemory=2000 State=UNKNOWN\n",
			name, host, freePort(t), o.CPUs)
	}
	conf := fmt.Sprintf(`ClusterName=llemtest
SlurmctldHost=%[1]s(127.0.0.1)
SlurmctldPort=%[2]d
AuthType=auth/munge
AuthInfo=socket=%[3]s
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/none
MpiDefault=none
ReturnToService=2
StateSaveLocation=%[4]s/state
SlurmdSpoolDir=%[4]s/spool/%%n
SlurmctldPidFile=%[4]s/run/slurmctld.pid
SlurmdPidFile=%[4]s/run/slurmd-%%n.pid
SlurmctldLogFile=%[4]s/log/slurmctld.log
SlurmdLogFile=%[4]s/log/slurmd-%%n.log
SchedulerType=sched/backfill
SchedulerParameters=sched_interval=1
MinJobAge=600
KillWait=2
OverTimeLimit=0
InactiveLimit=0
MessageTimeout=10
SlurmdTimeout=30
%[5]sPartitionName=debug Nodes=ALL Default=YES MaxTime=INFINITE State=UP
`, host, ctlPort, sock, dir, nodes.String())
	if err := os.WriteFile(c.Conf, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	c.Env = []string{"SLURM_CONF=" + c.Conf}
	t.Setenv("SLURM_CONF", c.Conf)
	t.Cleanup(func() { c.stop(t) })

	if out, err := exec.Command("slurmctld", "-f", c.Conf).CombinedOutput(); err != nil {
		t.Fatalf("slurmctld: %v\n%s", err, out)
	}
	for _, n := range c.Nodes {
		os.MkdirAll(filepath.Join(dir, "spool", n), 0o755)
		if out, err := exec.Command("slurmd", "-f", c.Conf, "-N", n).CombinedOutput(); err != nil {
			t.Fatalf("slurmd %s: %v\n%s\n%s", n, err, out, c.Logs())
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for {
		out, _ := exec.Command("sinfo", "-h", "-N", "-o", "%N %t").Output()
		idle := 0
		for _, l := range strings.Split(strings.TrimSpace(string(out)), "\n") {
			if f := strings.Fields(l); len(f) == 2 && f[1] == "idle" {
				idle++
			}
		}
		if idle == len(c.Nodes) {
			return c
		}
		if time.Now().After(deadline) {
			t.Fatalf("slurm nodes not idle after 60 s: %s\n%s", out, c.Logs())
		}
		time.Sleep(300 * time.Millisecond)
	}
}

// Logs returns the daemons' logs, for failure messages.
func (c *Cluster) Logs() string {
	var b strings.Builder
	files, _ := filepath.Glob(filepath.Join(c.Dir, "log", "*.log"))
	for _, f := range files {
		data, _ := os.ReadFile(f)
		if len(data) > 4000 {
			data = data[len(data)-4000:]
		}
		fmt.Fprintf(&b, "== %s\n%s\n", filepath.Base(f), data)
	}
	return b.String()
}

// stop cancels every job, stops the daemons by their pid files and
// removes the scratch directory.
func (c *Cluster) stop(t testing.TB) {
	exec.Command("scancel", "--full", "-p", c.Partition).Run()
	exec.Command("scontrol", "shutdown").Run() // slurmctld and every slurmd
	time.Sleep(500 * time.Millisecond)
	pids, _ := filepath.Glob(filepath.Join(c.Dir, "run", "*.pid"))
	pids = append(pids, filepath.Join(c.Dir, "munge", "munged.pid"))
	for _, p := range pids {
		killPidFile(p)
	}
	if t.Failed() {
		t.Log(c.Logs())
	}
	os.RemoveAll(c.Dir)
}

func killPidFile(path string) {
	b, err := os.ReadFile(path)
	if err != nil {
		return
	}
	var pid int
	if _, err := fmt.Sscan(string(b), &pid); err != nil || pid <= 1 {
		return
	}
	if p, err := os.FindProcess(pid); err == nil {
		p.Kill()
	}
}

func freePort(t testing.TB) int {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// unavailable skips, or fails under CI, where Slurm must be present.
func unavailable(t testing.TB, why string) {
	t.Helper()
	if os.Getenv("CI") == "true" {
		t.Fatalf("slurm test cluster: %s (CI must run it: .ci/run installs slurm-wlm and munge)", why)
	}
	t.Skipf("slurm test cluster: %s", why)
}
