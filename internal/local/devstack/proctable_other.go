//go:build unix && !linux

package devstack

import (
	"bufio"
	"bytes"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
)

// processTable lists every process of the machine with ps(1).
func processTable() ([]procEntry, error) {
	out, err := exec.Command("ps", "-A", "-o", "pid=,ppid=,pgid=,state=,comm=").Output()
	if err != nil {
		return nil, err
	}
	var table []procEntry
	sc := bufio.NewScanner(bytes.NewReader(out))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 5 {
			continue
		}
		pid, err1 := strconv.Atoi(f[0])
		ppid, err2 := strconv.Atoi(f[1])
		pgid, err3 := strconv.Atoi(f[2])
		if err1 != nil || err2 != nil || err3 != nil {
			continue
		}
		table = append(table, procEntry{PID: pid, PPID: ppid, PGID: pgid, Zombie: strings.HasPrefix(f[3], "Z"), Name: strings.Join(f[4:], " ")})
	}
	return table, sc.Err()
}

// Running reports whether pid is a live process.
func Running(pid int) bool {
	return pid > 0 && syscall.Kill(pid, 0) == nil
}

func setDeathSignal(*syscall.SysProcAttr) {}
