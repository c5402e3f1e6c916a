//go:build unix && !linux

package loadtest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in its own process group, so that a
// signal to the load test's terminal does not reach it and killGroup
// reaches its children too.
func setProcessGroup(cmd *exec.Cmd) { cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true} }

func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

func termGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
