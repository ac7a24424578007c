package benchkit

import (
	"errors"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times; 100 on every Linux this runs on.
const clockTicks = 100

// ProcCPU is the user+system CPU process pid has used so far, from /proc/<pid>/stat, at
// USER_HZ (10 ms) resolution: accurate enough over a benchmark's many operations.
func ProcCPU(pid int) (time.Duration, error) {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return 0, err
	}
	// The command name is in parentheses and may hold spaces: fields start after the last ")".
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, errors.New("unexpected /proc stat format")
	}
	f := strings.Fields(s[i+1:])
	// After ")": state(3) ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt utime(14) stime(15).
	if len(f) < 13 {
		return 0, errors.New("unexpected /proc stat format")
	}
	ut, err1 := strconv.ParseInt(f[11], 10, 64)
	st, err2 := strconv.ParseInt(f[12], 10, 64)
	if err := errors.Join(err1, err2); err != nil {
		return 0, err
	}
	return time.Duration(ut+st) * time.Second / clockTicks, nil
}

// MotoPIDs finds the moto_server processes serving endpoint (matched by the "-p <port>" on
// their command line): moto_server may run as a Python process under a wrapper, so every
// match is returned and their CPU summed.
func MotoPIDs(endpoint string) []int {
	u, err := url.Parse(endpoint)
	if err != nil {
		return nil
	}
	port := u.Port()
	entries, _ := os.ReadDir("/proc")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		if err != nil {
			continue
		}
		args := strings.Split(strings.TrimRight(string(b), "\x00"), "\x00")
		if !slices.ContainsFunc(args, func(a string) bool { return strings.Contains(a, "moto_server") }) {
			continue
		}
		if i := slices.Index(args, "-p"); i >= 0 && i+1 < len(args) && args[i+1] == port {
			pids = append(pids, pid)
		}
	}
	return pids
}

// SumProcCPU adds up ProcCPU over pids, skipping any that exited.
func SumProcCPU(pids []int) time.Duration {
	var total time.Duration
	for _, p := range pids {
		if d, err := ProcCPU(p); err == nil {
			total += d
		}
	}
	return total
}
