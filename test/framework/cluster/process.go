package cluster

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// daemon is a started component, identified by its PID and its start time,
// so that a recycled PID is never signalled.
type daemon struct {
	PID   int
	Start string
}

// startDaemon starts args in its own session with output to logs/name.log,
// inside NetNS (nsenter --net, not ip netns exec, which would remount /sys
// and hide the cgroups from the kubelet and runc), and records it in
// run/name.pid so that down can stop it from another process.
func (c *Cluster) startDaemon(name string, args ...string) error {
	return c.startDaemonEnv(name, nil, args...)
}

// startDaemonEnv is startDaemon with env added to this process's.
func (c *Cluster) startDaemonEnv(name string, env []string, args ...string) error {
	log, err := os.OpenFile(filepath.Join(c.Dir, "logs", name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return err
	}
	defer log.Close()
	argv := append([]string{"nsenter", "--net=" + netnsPath, "--"}, args...)
	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Stdout, cmd.Stderr = log, log
	cmd.Dir = c.Dir
	if env != nil {
		cmd.Env = append(os.Environ(), env...)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("start %s: %w", name, err)
	}
	d := daemon{PID: cmd.Process.Pid, Start: startTime(cmd.Process.Pid)}
	// Reap it if it exits while this process lives; after that, init does.
	go func() { _ = cmd.Wait() }()
	return os.WriteFile(c.pidFile(name), []byte(fmt.Sprintf("%d %s\n", d.PID, d.Start)), 0o644)
}

func (c *Cluster) pidFile(name string) string { return filepath.Join(c.Dir, "run", name+".pid") }

// daemon returns the recorded daemon name, if it is still running.
func (c *Cluster) daemon(name string) (daemon, bool) {
	b, err := os.ReadFile(c.pidFile(name))
	if err != nil {
		return daemon{}, false
	}
	var d daemon
	if _, err := fmt.Sscan(string(b), &d.PID, &d.Start); err != nil {
		return daemon{}, false
	}
	return d, alive(d.PID, d.Start)
}

// stopDaemon stops name with SIGTERM, then SIGKILL after 5 s.
func (c *Cluster) stopDaemon(name string) error {
	d, ok := c.daemon(name)
	if ok {
		if err := stopPID(d.PID, d.Start, 5*time.Second); err != nil {
			return fmt.Errorf("stop %s: %w", name, err)
		}
	}
	if err := os.Remove(c.pidFile(name)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// stopPID signals pid (if it is still the process that started at start)
// with SIGTERM and waits, then SIGKILL.
func stopPID(pid int, start string, grace time.Duration) error {
	if !alive(pid, start) {
		return nil
	}
	_ = syscall.Kill(pid, syscall.SIGTERM)
	for end := time.Now().Add(grace); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if !alive(pid, start) {
			return nil
		}
	}
	_ = syscall.Kill(pid, syscall.SIGKILL)
	for end := time.Now().Add(5 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		if !alive(pid, start) {
			return nil
		}
	}
	return fmt.Errorf("pid %d still running after SIGKILL", pid)
}

// alive reports whether pid runs and started at start; a zombie counts as
// dead, since nobody may be left to reap it.
func alive(pid int, start string) bool {
	st, err := stat(pid)
	if err != nil {
		return false
	}
	return st[0] != "Z" && (start == "" || st[19] == start)
}

// startTime is field 22 of /proc/pid/stat: the start time in clock ticks.
func startTime(pid int) string {
	st, err := stat(pid)
	if err != nil {
		return ""
	}
	return st[19]
}

// stat returns the fields of /proc/pid/stat after the command name, from
// the state (field 3) on.
func stat(pid int) ([]string, error) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return nil, err
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return nil, fmt.Errorf("/proc/%d/stat: %q", pid, s)
	}
	return f, nil
}

// processesMatching lists the PIDs whose command line contains every one of
// words: the containerd shims of this cluster's socket.
func processesMatching(words ...string) []int {
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/cmdline")
		if err != nil {
			continue
		}
		cmdline := strings.ReplaceAll(string(b), "\x00", " ")
		all := true
		for _, w := range words {
			all = all && strings.Contains(cmdline, w)
		}
		if all && alive(pid, "") {
			pids = append(pids, pid)
		}
	}
	return pids
}
