package record

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/pipectl/pipectl/engine/secret"
)

// Log is one stage's log file. Each line is
//
//	<UTC time, ms> #<attempt> <stream> | <text>
//
// where stream is stdout, stderr, progress, link or pipectl (the runner's
// own notes: started, retrying, finished). Every attempt appends to the
// same file.
type Log struct {
	mu sync.Mutex
	f  *os.File
	w  *bufio.Writer
	// redact masks credentials in every line (engine/secret).
	redact *secret.Redactor
}

// Redact masks the given secret values, besides every credential-shaped
// text, in the lines written from now on.
func (l *Log) Redact(values []string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.redact = secret.NewRedactor(values)
}

var stageNameRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9_-]*$`)

// LogPath returns the log file of stage in run id.
func (s *Store) LogPath(id, stage string) string {
	return filepath.Join(s.Dir, id, "logs", stage+".log")
}

// OpenLog opens stage's log of run id for appending.
func (s *Store) OpenLog(id, stage string) (*Log, error) {
	if !ValidID(id) || !stageNameRE.MatchString(stage) {
		return nil, fmt.Errorf("invalid run %q or stage %q", id, stage)
	}
	if err := os.MkdirAll(filepath.Join(s.Dir, id, "logs"), 0o700); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(s.LogPath(id, stage), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	return &Log{f: f, w: bufio.NewWriter(f)}, nil
}

// Line appends text (split at newlines) for an attempt.
func (l *Log) Line(t time.Time, attempt int, stream, text string) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ts := t.UTC().Format("2006-01-02T15:04:05.000Z")
	for _, line := range strings.Split(strings.TrimRight(text, "\n"), "\n") {
		fmt.Fprintf(l.w, "%s #%d %s | %s\n", ts, attempt, stream, l.redact.String(line))
	}
	// Flush each line: a crash must not lose the lines before it, and
	// `pipectl logs` may read while the run goes on.
	_ = l.w.Flush()
}

// Close flushes and closes the log. It does not fsync: every line is
// already written through, and a log is not worth a disk flush per stage.
func (l *Log) Close() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	return errors.Join(l.w.Flush(), l.f.Close())
}

// LogLine is one parsed line of a stage log.
type LogLine struct {
	Time    string
	Attempt int
	Stream  string
	Text    string
	Raw     string
}

// ReadLog returns stage's log lines of run id; attempt > 0 keeps only that
// attempt's.
func (s *Store) ReadLog(id, stage string, attempt int) ([]LogLine, error) {
	if !ValidID(id) || !stageNameRE.MatchString(stage) {
		return nil, fmt.Errorf("invalid run %q or stage %q", id, stage)
	}
	f, err := os.Open(s.LogPath(id, stage))
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return parseLog(f, attempt)
}

func parseLog(r io.Reader, attempt int) ([]LogLine, error) {
	var out []LogLine
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64*1024), 16<<20)
	for sc.Scan() {
		raw := sc.Text()
		ll := LogLine{Raw: raw}
		head, text, ok := strings.Cut(raw, " | ")
		fields := strings.Fields(head)
		if ok && len(fields) == 3 && strings.HasPrefix(fields[1], "#") {
			ll.Time, ll.Stream, ll.Text = fields[0], fields[2], text
			ll.Attempt, _ = strconv.Atoi(fields[1][1:])
		}
		if attempt > 0 && ll.Attempt != attempt {
			continue
		}
		out = append(out, ll)
	}
	return out, sc.Err()
}
