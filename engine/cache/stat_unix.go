//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package cache

import (
	"os"
	"syscall"
)

// statIdentity returns a file's change time (ns) and inode.
func statIdentity(fi os.FileInfo) (ctimeNS int64, inode uint64) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return 0, 0
	}
	return statCtime(st), uint64(st.Ino)
}
