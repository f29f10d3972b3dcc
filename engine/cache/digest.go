package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sync/atomic"
	"time"

	"github.com/pipectl/pipectl/internal/atomicfile"
)

// Digests computes the SHA-256 of input files and directories and
// remembers it on disk, one small JSON file per path under Dir, keyed by
// the file's identity: path, size, modification time (ns), change time
// (ns) and inode. A file whose identity has not changed is not read again,
// so an unchanged 1 GB input costs a stat per run. The change time is
// there because tools that restore mtimes (cp -p, rsync -t, touch -r)
// cannot restore it.
//
// A file modified less than racyWindow before it was hashed is not
// remembered: a write within the same timestamp tick would keep its
// identity (git's "racily clean" problem). It is read again next time.
//
// Digests is safe for concurrent use, also by several processes: memo
// files are written atomically, and a lost or corrupt one costs a re-read.
type Digests struct {
	Dir string
	// Now is the clock (time.Now when nil).
	Now func() time.Time

	hashed atomic.Int64
}

// racyWindow is how recent a modification must be for its hash not to be
// remembered.
const racyWindow = 2 * time.Second

// DigestsIn returns the digest memo of a state directory.
func DigestsIn(stateDir string) *Digests {
	return &Digests{Dir: filepath.Join(stateDir, "cache", "inputs")}
}

// Hashed returns how many files this Digests has read (not served from the
// memo).
func (d *Digests) Hashed() int64 { return d.hashed.Load() }

// Sum returns "sha256:<hex>" of a file's content, or of a directory: the
// SHA-256 of its files' relative slash-separated paths and content hashes,
// sorted by path (hidden entries included; symbolic links followed by
// nothing but their target's content). detail says what was hashed.
func (d *Digests) Sum(path string) (sum, detail string, err error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", "", err
	}
	fi, err := os.Stat(abs)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return "", "", fmt.Errorf("%s does not exist", path)
		}
		return "", "", err
	}
	if !fi.IsDir() {
		s, err := d.file(abs, fi)
		if err != nil {
			return "", "", err
		}
		return "sha256:" + s, fmt.Sprintf("%d bytes", fi.Size()), nil
	}
	type entry struct{ rel, sum string }
	var entries []entry
	var size int64
	err = filepath.WalkDir(abs, func(p string, de fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if de.IsDir() {
			return nil
		}
		fi, err := os.Stat(p)
		if err != nil {
			return err
		}
		if fi.IsDir() {
			return nil // a link to a directory: not followed
		}
		s, err := d.file(p, fi)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(abs, p)
		entries = append(entries, entry{filepath.ToSlash(rel), s})
		size += fi.Size()
		return nil
	})
	if err != nil {
		return "", "", err
	}
	slices.SortFunc(entries, func(a, b entry) int {
		switch {
		case a.rel < b.rel:
			return -1
		case a.rel > b.rel:
			return 1
		}
		return 0
	})
	h := sha256.New()
	for _, e := range entries {
		fmt.Fprintf(h, "%s\x00%s\n", e.rel, e.sum)
	}
	return "sha256:" + hex.EncodeToString(h.Sum(nil)), fmt.Sprintf("directory, %d files, %d bytes", len(entries), size), nil
}

// memo is one remembered hash.
type memo struct {
	Path    string `json:"path"`
	Size    int64  `json:"size"`
	MtimeNS int64  `json:"mtime_ns"`
	CtimeNS int64  `json:"ctime_ns"`
	Inode   uint64 `json:"inode"`
	SHA256  string `json:"sha256"`
}

func (m memo) same(o memo) bool {
	return m.Path == o.Path && m.Size == o.Size && m.MtimeNS == o.MtimeNS && m.CtimeNS == o.CtimeNS && m.Inode == o.Inode
}

func (d *Digests) memoPath(abs string) string {
	s := sha256.Sum256([]byte(abs))
	return filepath.Join(d.Dir, hex.EncodeToString(s[:16])+".json")
}

// file returns the hex SHA-256 of a regular file, from the memo when its
// identity is unchanged.
func (d *Digests) file(abs string, fi os.FileInfo) (string, error) {
	id := memo{Path: abs, Size: fi.Size(), MtimeNS: fi.ModTime().UnixNano()}
	id.CtimeNS, id.Inode = statIdentity(fi)
	mp := ""
	if d.Dir != "" {
		mp = d.memoPath(abs)
		if b, err := os.ReadFile(mp); err == nil {
			var m memo
			if json.Unmarshal(b, &m) == nil && m.same(id) && len(m.SHA256) == 64 {
				return m.SHA256, nil
			}
		}
	}
	f, err := os.Open(abs)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", fmt.Errorf("read %s: %w", abs, err)
	}
	d.hashed.Add(1)
	id.SHA256 = hex.EncodeToString(h.Sum(nil))
	// Remember it only when the file did not change while it was read and
	// is not racily recent.
	after, err := f.Stat()
	now := time.Now
	if d.Now != nil {
		now = d.Now
	}
	if mp != "" && err == nil && after.Size() == fi.Size() && after.ModTime().Equal(fi.ModTime()) &&
		now().Sub(fi.ModTime()) >= racyWindow {
		if b, err := json.Marshal(id); err == nil {
			if os.MkdirAll(d.Dir, 0o755) == nil {
				_ = atomicfile.WriteFileNoSync(mp, append(b, '\n'), 0o600)
			}
		}
	}
	return id.SHA256, nil
}
