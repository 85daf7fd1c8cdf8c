//go:build !linux

package motoserver

import "syscall"

func setDeathSignal(*syscall.SysProcAttr) {}
