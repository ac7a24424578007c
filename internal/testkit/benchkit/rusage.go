package benchkit

import (
	"syscall"
	"time"
)

// CPUTime is the user+system CPU this process has used so far (getrusage(RUSAGE_SELF)). The
// in-process emulators' server side is included; moto_server, a separate process, is not.
func CPUTime() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// MaxRSS is the peak resident set size of this process so far, in bytes (Linux reports
// ru_maxrss in KiB).
func MaxRSS() int64 {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0
	}
	return int64(ru.Maxrss) * 1024
}

// Stopwatch accumulates wall and CPU time over the sections it is running, so a benchmark can
// leave out what Secrets Manager (not the function under test) does in between.
type Stopwatch struct {
	Wall, CPU time.Duration
	running   bool
	w0        time.Time
	c0        time.Duration
}

// Start begins a section; a second Start is a no-op.
func (s *Stopwatch) Start() {
	if s.running {
		return
	}
	s.running, s.w0, s.c0 = true, time.Now(), CPUTime()
}

// Stop ends a section; Stop when not running is a no-op.
func (s *Stopwatch) Stop() {
	if !s.running {
		return
	}
	s.running = false
	s.Wall += time.Since(s.w0)
	s.CPU += CPUTime() - s.c0
}
