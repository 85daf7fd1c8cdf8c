package motoserver

import "syscall"

// setDeathSignal has the kernel kill moto when the process that started it
// dies without calling Stop (a test binary that panics or hits go test's
// timeout runs no cleanup): moto runs in its own process group, so nothing
// else would end it, and orphaned servers pile up on a shared machine.
func setDeathSignal(attr *syscall.SysProcAttr) { attr.Pdeathsig = syscall.SIGKILL }
