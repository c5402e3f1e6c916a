//go:build !unix

package loadtest

import (
	"os"
	"os/exec"
)

func setProcessGroup(*exec.Cmd) {}

func killGroup(cmd *exec.Cmd) { _ = cmd.Process.Kill() }

func termGroup(cmd *exec.Cmd) { _ = cmd.Process.Signal(os.Interrupt) }
