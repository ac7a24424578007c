package localcloud

import (
	"net"
	"os"
	"os/exec"
	"testing"
)

// TestListeningPortsTellsWhoseSocketItIs: StartFunction trusts a port only when RIE's own
// process listens on it, so listeningPorts must tell this process's socket from another's.
func TestListeningPortsTellsWhoseSocketItIs(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	if !listeningPorts(os.Getpid())[port] {
		t.Fatalf("port %d that this process listens on is not among its listening ports", port)
	}
	// A child process (sleep) holds no socket: the same port is not its.
	child := exec.Command("sleep", "5")
	if err := child.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = child.Process.Kill(); _ = child.Wait() }()
	if listeningPorts(child.Process.Pid)[port] {
		t.Fatalf("port %d is reported as the child's, but only this process listens on it", port)
	}
	l.Close()
	if listeningPorts(os.Getpid())[port] {
		t.Fatalf("port %d still reported after its listener closed", port)
	}
}
