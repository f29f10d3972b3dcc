package local

import (
	"os"
	"path/filepath"
	"time"

	"github.com/gofrs/flock"
)

// attemptLock is the file in an attempt's directory that the attempt holds
// locked while it runs.
const attemptLock = ".lock"

// staleAfter is how old an unlocked attempt directory must be before it
// is removed: a new one is briefly unlocked between its creation and its
// lock.
const staleAfter = time.Minute

// attemptDir creates the directory of one attempt's result files under dir
// and locks it; release removes it. Directories that attempts of executors
// killed with SIGKILL left behind (the kernel dropped their locks) are
// removed first: dir is shared by every pipectl process of a state
// directory, so only unlocked, older ones go.
func attemptDir(dir, prefix string) (string, func(), error) {
	removeStaleAttempts(dir)
	tmp, err := os.MkdirTemp(dir, prefix)
	if err != nil {
		return "", nil, err
	}
	lock := flock.New(filepath.Join(tmp, attemptLock))
	if err := lock.Lock(); err != nil {
		os.RemoveAll(tmp)
		return "", nil, err
	}
	return tmp, func() {
		lock.Unlock() // first: Windows cannot remove an open file
		os.RemoveAll(tmp)
	}, nil
}

func removeStaleAttempts(dir string) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return
	}
	for _, e := range entries {
		info, err := e.Info()
		if err != nil || !e.IsDir() || time.Since(info.ModTime()) < staleAfter {
			continue
		}
		path := filepath.Join(dir, e.Name())
		lock := flock.New(filepath.Join(path, attemptLock))
		if ok, err := lock.TryLock(); err == nil && ok {
			lock.Unlock()
			os.RemoveAll(path)
		}
	}
}
