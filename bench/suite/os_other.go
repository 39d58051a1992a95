//go:build !linux

package main

import "syscall"

// childAttr returns nil: only Linux can tie a child's life to its parent
// (Pdeathsig); elsewhere stop and the suite's cleanup end the children.
func childAttr() *syscall.SysProcAttr { return nil }
