package proc

import "syscall"

// sysProcAttr puts the child in its own process group, so a Ctrl-C at the
// terminal reaches only the supervisor, which then stops its children in
// order; and asks the kernel to SIGKILL the child if the supervisor dies
// first, so a crashed demo or test leaves nothing running.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
