//go:build unix

package local

import (
	"net"
	"os"
	"syscall"
)

// workerSupported: the worker forks and passes file descriptors over a
// Unix socket.
const workerSupported = true

// sendWithFiles writes b to conn with the files' descriptors attached
// (SCM_RIGHTS): the receiver gets its own copies.
func sendWithFiles(conn *net.UnixConn, b []byte, files ...*os.File) error {
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	_, _, err := conn.WriteMsgUnix(b, syscall.UnixRights(fds...), nil)
	return err
}

// killGroup kills process group pgid.
func killGroup(pgid int) { _ = syscall.Kill(-pgid, syscall.SIGKILL) }
