//go:build unix

package main

import (
	"log"
	"syscall"
)

// raiseFileLimit lifts this process's soft limit on open files to the hard
// limit before any server starts: the servers are its children and inherit
// it, and each socket of the messaging measurement is a descriptor on both
// sides. (Go raises its own soft limit at start-up but gives children the
// original one unless the program sets the limit itself, as here.)
func raiseFileLimit() {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Printf("open files limit: %v", err)
		return
	}
	rl.Cur = rl.Max
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		log.Printf("open files limit: %v", err)
	}
}

// fileLimit is the soft limit on open files.
func fileLimit() uint64 {
	var rl syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &rl); err != nil {
		return 0
	}
	return uint64(rl.Cur)
}
