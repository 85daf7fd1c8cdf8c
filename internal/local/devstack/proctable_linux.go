package devstack

import (
	"bytes"
	"os"
	"strconv"
	"syscall"
)

// processTable lists every process of the machine from /proc.
func processTable() ([]procEntry, error) {
	dir, err := os.ReadDir("/proc")
	if err != nil {
		return nil, err
	}
	var out []procEntry
	for _, d := range dir {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		e, ok := readStat(pid)
		if ok {
			out = append(out, e)
		}
	}
	return out, nil
}

// readStat parses /proc/PID/stat: "pid (comm) state ppid pgrp ...". comm may
// hold spaces and parentheses, so the fields after it are found from the last ')'.
func readStat(pid int) (procEntry, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return procEntry{}, false
	}
	open, end := bytes.IndexByte(b, '('), bytes.LastIndexByte(b, ')')
	if open < 0 || end < open {
		return procEntry{}, false
	}
	f := bytes.Fields(b[end+1:])
	if len(f) < 3 {
		return procEntry{}, false
	}
	ppid, err1 := strconv.Atoi(string(f[1]))
	pgid, err2 := strconv.Atoi(string(f[2]))
	if err1 != nil || err2 != nil {
		return procEntry{}, false
	}
	return procEntry{
		PID:    pid,
		PPID:   ppid,
		PGID:   pgid,
		Name:   string(b[open+1 : end]),
		Zombie: len(f[0]) == 1 && (f[0][0] == 'Z' || f[0][0] == 'X'),
	}, true
}

// Running reports whether pid is a live process. A zombie (exited, not yet
// reaped by its parent) does not count: it holds no resources but its entry.
func Running(pid int) bool {
	if pid <= 0 {
		return false
	}
	e, ok := readStat(pid)
	return ok && !e.Zombie
}

func setDeathSignal(attr *syscall.SysProcAttr) {
	// If this process dies without running Close (SIGKILL, crash), the kernel
	// kills the children it started directly.
	attr.Pdeathsig = syscall.SIGKILL
}
