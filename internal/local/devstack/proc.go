package devstack

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"
)

// Process is one process the stack started, directly or through one of its
// children (the emulator starts the function's bootstrap).
type Process struct {
	Name string // executable name, e.g. "zimserver", "aws-lambda-rie", "bootstrap"
	PID  int
	PGID int // process group
}

type procEntry struct {
	PID, PPID, PGID int
	Name            string
	Zombie          bool
}

// descendants returns the live processes below pid in table, children first.
func descendants(table []procEntry, pid int) []procEntry {
	var out []procEntry
	parents := []int{pid}
	for len(parents) > 0 {
		var next []int
		for _, e := range table {
			if !e.Zombie && slices.Contains(parents, e.PPID) {
				out = append(out, e)
				next = append(next, e.PID)
			}
		}
		parents = next
	}
	return out
}

// Descendants lists the live processes below pid (children, grandchildren…).
func Descendants(pid int) ([]Process, error) {
	table, err := processTable()
	if err != nil {
		return nil, err
	}
	var out []Process
	for _, e := range descendants(table, pid) {
		out = append(out, Process{Name: e.Name, PID: e.PID, PGID: e.PGID})
	}
	return out, nil
}

// child is a process the stack started in its own process group, with its
// stdout and stderr captured line by line into memory and into a log file.
type child struct {
	name    string
	cmd     *exec.Cmd
	stdout  *lineLog
	stderr  *lineLog
	file    *os.File
	exited  chan struct{} // closed once the process has been waited for
	waitErr error         // set before exited is closed
}

// startChild starts argv with env in dir. Both output streams go to
// logDir/name.log; onStdout (if not nil) sees every complete stdout line.
func startChild(name string, argv, env []string, dir, logDir string, onStdout func(string)) (*child, error) {
	f, err := os.Create(filepath.Join(logDir, name+".log"))
	if err != nil {
		return nil, fmt.Errorf("devstack: %s log: %w", name, err)
	}
	c := &child{name: name, file: f, exited: make(chan struct{})}
	c.stdout = newLineLog(f, onStdout)
	c.stderr = newLineLog(f, nil)
	c.stderr.mu = c.stdout.mu // one file, whole lines from either stream

	cmd := exec.Command(argv[0], argv[1:]...)
	cmd.Env = env
	cmd.Dir = dir
	cmd.Stdout = c.stdout
	cmd.Stderr = c.stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	setDeathSignal(cmd.SysProcAttr)
	// A grandchild that inherited the output pipes must not keep Wait from
	// returning once the child itself has exited.
	cmd.WaitDelay = 2 * time.Second
	if err := cmd.Start(); err != nil {
		f.Close()
		return nil, fmt.Errorf("devstack: starting %s: %w", name, err)
	}
	c.cmd = cmd
	go func() {
		c.waitErr = cmd.Wait()
		c.stdout.flush()
		c.stderr.flush()
		close(c.exited)
	}()
	return c, nil
}

func (c *child) pid() int { return c.cmd.Process.Pid }

// exitedErr describes how the child ended, for start-up errors.
func (c *child) exitedErr() error {
	msg := fmt.Sprintf("%s exited", c.name)
	if c.waitErr != nil {
		msg += " (" + c.waitErr.Error() + ")"
	}
	if tail := c.stderr.tail(5); len(tail) > 0 {
		msg += "; its last output:\n  " + strings.Join(tail, "\n  ")
	} else if tail := c.stdout.tail(5); len(tail) > 0 {
		msg += "; its last output:\n  " + strings.Join(tail, "\n  ")
	}
	return errors.New(msg)
}

// processes lists the child and every live process below it.
func (c *child) processes() []Process {
	out := []Process{{Name: c.name, PID: c.pid(), PGID: c.pid()}}
	if table, err := processTable(); err == nil {
		for _, e := range descendants(table, c.pid()) {
			out = append(out, Process{Name: e.Name, PID: e.PID, PGID: e.PGID})
		}
	}
	return out
}

// stop ends the child and everything it started: first the descendants (the
// emulator runs the function in a process group of its own and does not stop
// it on SIGTERM), while the child is alive to reap them, then the child's own
// group. SIGTERM first, SIGKILL after grace. It waits until all are gone.
func (c *child) stop(grace time.Duration) error {
	select {
	case <-c.exited:
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL) // anything left in its group
		return c.file.Close()
	default:
	}
	var desc []procEntry
	if table, err := processTable(); err == nil {
		desc = descendants(table, c.pid())
	}
	var groups []int
	for _, d := range desc {
		if d.PGID != c.pid() && d.PGID > 1 && !slices.Contains(groups, d.PGID) {
			groups = append(groups, d.PGID)
		}
	}
	signalAll := func(sig syscall.Signal) {
		for _, g := range groups {
			_ = syscall.Kill(-g, sig)
		}
		for _, d := range desc {
			_ = syscall.Kill(d.PID, sig)
		}
	}
	if len(desc) > 0 {
		signalAll(syscall.SIGTERM)
		if !waitGone(desc, grace) {
			signalAll(syscall.SIGKILL)
			waitGone(desc, grace)
		}
	}

	_ = syscall.Kill(-c.pid(), syscall.SIGTERM)
	t := time.NewTimer(grace)
	defer t.Stop()
	select {
	case <-c.exited:
	case <-t.C:
		_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
		<-c.exited
	}
	_ = syscall.Kill(-c.pid(), syscall.SIGKILL)
	var err error
	if left := stillRunning(desc); len(left) > 0 {
		err = fmt.Errorf("devstack: %s: processes still running after SIGKILL: %v", c.name, left)
	}
	return errors.Join(err, c.file.Close())
}

// waitGone polls until none of procs runs, or grace has passed.
func waitGone(procs []procEntry, grace time.Duration) bool {
	deadline := time.Now().Add(grace)
	for {
		if len(stillRunning(procs)) == 0 {
			return true
		}
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func stillRunning(procs []procEntry) []int {
	var pids []int
	for _, p := range procs {
		if Running(p.PID) {
			pids = append(pids, p.PID)
		}
	}
	return pids
}
