package atomicfile

import (
	"errors"
	"syscall"
)

// isUnsupported reports errors of file systems that do not sync
// directories (some network and FUSE file systems).
func isUnsupported(err error) bool {
	return errors.Is(err, syscall.EINVAL) || errors.Is(err, syscall.ENOTSUP) || errors.Is(err, syscall.EBADF)
}
