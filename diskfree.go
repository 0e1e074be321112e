package main

import (
	"fmt"
	"syscall"
)

// freeSpace reports the bytes free to this process on the disk holding dir
// (statfs: available blocks times block size), for the engine's floor.
func freeSpace(dir string) func() (uint64, error) {
	return func() (uint64, error) {
		var st syscall.Statfs_t
		if err := syscall.Statfs(dir, &st); err != nil {
			return 0, fmt.Errorf("statfs %s: %w", dir, err)
		}
		return st.Bavail * uint64(st.Bsize), nil
	}
}
