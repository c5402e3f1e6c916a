package loadtest

import (
	"os/exec"
	"syscall"
)

// setProcessGroup puts the child in its own process group, so that a
// signal to the load test's terminal does not reach it and killGroup
// reaches its children too, and has the kernel kill it when the load test
// dies, even by SIGKILL.
func setProcessGroup(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}

func killGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }

func termGroup(cmd *exec.Cmd) { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM) }
