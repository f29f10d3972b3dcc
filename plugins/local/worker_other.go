//go:build !unix

package local

import (
	"errors"
	"net"
	"os"
)

// workerSupported: without fork and descriptor passing, every stage is a
// plain process.
const workerSupported = false

func sendWithFiles(*net.UnixConn, []byte, ...*os.File) error {
	return errors.New("not supported")
}

func killGroup(int) {}
