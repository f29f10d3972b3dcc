package gc

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/gofrs/flock"

	"github.com/pipectl/pipectl/engine/cache"
	"github.com/pipectl/pipectl/engine/lock"
	"github.com/pipectl/pipectl/engine/record"
)

// Defaults of the retention policy.
const (
	DefaultKeepRuns  = 20
	DefaultOlderThan = 30 * 24 * time.Hour
)

// tmpStaleAfter is how old an unlocked directory under tmp/ must be: a
// new attempt's directory is briefly unlocked between creation and lock.
const tmpStaleAfter = time.Minute

// localExecutor is the executor whose outputs are local paths.
const localExecutor = "local"

// Kind is what an item is.
type Kind string

const (
	KindRun         Kind = "run"
	KindPredictions Kind = "predictions"
	KindData        Kind = "data"
	KindCache       Kind = "cache"
	KindTmp         Kind = "tmp"
	KindVenv        Kind = "venv"
	// KindTrash is what a gc interrupted mid-delete left (.gc-*).
	KindTrash Kind = "trash"
)

// applyOrder: cache entries first (see the package comment).
var applyOrder = []Kind{KindCache, KindPredictions, KindData, KindRun, KindTmp, KindVenv, KindTrash}

// trashPrefix starts the name a directory is renamed to before removal.
const trashPrefix = ".gc-"

// Item is one thing to delete.
type Item struct {
	Kind  Kind   `json:"kind"`
	Path  string `json:"path"`
	Bytes int64  `json:"bytes"`
	// Why says why it may go.
	Why string `json:"why"`
	// extra files removed with it (a venv's lock file).
	extra []string
}

// Policy is the retention of run records.
type Policy struct {
	// KeepRuns is how many of each pipeline's newest runs are kept.
	KeepRuns int
	// OlderThan: runs younger than this are kept.
	OlderThan time.Duration
	// Now is the time ages are measured from.
	Now time.Time
}

// Pin is something that must stay whatever the policy: what a champion
// references.
type Pin struct {
	// Why names the pin, e.g. "champion sentiment_classifier@champion (v3)".
	Why string
	// RunID is a pipectl run to keep (the run that trained it), if known.
	RunID string
	// DataName and DataVersion name a data version to keep, if known.
	DataName, DataVersion string
}

// Inputs are what Scan looks at.
type Inputs struct {
	// StateDir is pipectl's state directory (.pipectl).
	StateDir string
	// DataRoots and OutputRoots are local data and prediction roots to
	// look in besides those the run records name (the defaults).
	DataRoots, OutputRoots []string
	// CurrentVenvs are the venv directories (base names) that requirements
	// files map to now; nil means unknown, and no venv is deleted.
	CurrentVenvs []string
	Pins         []Pin
	Policy       Policy
}

// Plan is what Scan found to delete.
type Plan struct {
	Items []Item `json:"items"`
	Bytes int64  `json:"total_bytes"`
	// Notes say what was kept that one might expect to go, and why.
	Notes []string `json:"notes,omitempty"`
	// live are the runs in progress at scan time.
	live     map[string]time.Time
	stateDir string
}

type dataKey struct{ name, version string }

// Scan decides what may be deleted.
func Scan(in Inputs) (*Plan, error) {
	if in.Policy.Now.IsZero() {
		in.Policy.Now = time.Now()
	}
	p := &Plan{stateDir: in.StateDir}
	live, err := liveRuns(in.StateDir)
	if err != nil {
		return nil, err
	}
	p.live = live
	isLive := func(id string) bool { _, ok := live[id]; return ok }
	// A data version written since the first run in progress started may
	// be one that run has not recorded yet.
	var liveSince time.Time
	for _, since := range live {
		if liveSince.IsZero() || since.Before(liveSince) {
			liveSince = since
		}
	}

	store := &record.Store{Dir: record.DirIn(in.StateDir)}
	runs, errs := store.List()
	for _, err := range errs {
		p.Notes = append(p.Notes, fmt.Sprintf("kept an unreadable run record: %v", err))
	}
	pinnedRuns := map[string]string{}
	for _, pin := range in.Pins {
		if pin.RunID != "" {
			pinnedRuns[pin.RunID] = pin.Why
		}
	}

	// Runs, oldest first: which stay.
	kept := map[string]*record.Run{}
	var dropped []*record.Run
	byPipeline := map[string][]*record.Run{}
	lastOK := map[string]string{} // pipeline@target -> run id
	for _, r := range runs {
		byPipeline[r.Pipeline] = append(byPipeline[r.Pipeline], r)
		if r.Effective() == record.Succeeded {
			lastOK[r.Pipeline+"@"+r.Target] = r.ID
		}
	}
	lastOKRuns := map[string]bool{}
	for _, id := range lastOK {
		lastOKRuns[id] = true
	}
	for _, rs := range byPipeline {
		for i, r := range rs {
			newest := len(rs) - i // 1 for the newest
			switch {
			case newest <= in.Policy.KeepRuns,
				in.Policy.Now.Sub(r.StartedAt) < in.Policy.OlderThan,
				lastOKRuns[r.ID],
				isLive(r.ID),
				r.Effective() == record.Running,
				pinnedRuns[r.ID] != "":
				kept[r.ID] = r
			default:
				dropped = append(dropped, r)
			}
		}
	}

	// References of what stays.
	cacheStore := &cache.Store{Dir: filepath.Join(in.StateDir, "cache")}
	keys, err := cacheStore.Keys()
	if err != nil {
		return nil, err
	}
	lastKeys, err := cacheStore.LastKeys()
	if err != nil {
		return nil, err
	}
	usedKeys := map[string]bool{}
	dataRefs := map[dataKey]bool{}
	dataRoots := map[string]bool{}
	predRoots := map[string]bool{}
	for _, d := range in.DataRoots {
		dataRoots[d] = true
	}
	for _, d := range in.OutputRoots {
		predRoots[d] = true
	}
	for _, r := range runs {
		for _, st := range r.Stages {
			if st.Executor != localExecutor {
				continue
			}
			if root, ok := dataRoot(st.Outputs); ok {
				dataRoots[root] = true
			}
			if dir, ok := predictionsDir(st.Outputs, r.ID); ok {
				predRoots[filepath.Dir(filepath.Dir(dir))] = true
			}
		}
	}
	for _, r := range kept {
		for _, st := range r.Stages {
			refData(dataRefs, st.Params)
			refData(dataRefs, st.Outputs)
			if st.Cache != nil && st.Cache.Key != "" {
				usedKeys[st.Cache.Key] = true
			}
		}
	}
	for _, pin := range in.Pins {
		if pin.DataName != "" && pin.DataVersion != "" {
			dataRefs[dataKey{pin.DataName, pin.DataVersion}] = true
		}
	}

	// Cache entries.
	for _, key := range keys {
		e, err := cacheStore.Get(key)
		if err != nil || e == nil {
			continue // unreadable: a later Put replaces it; not ours to judge
		}
		if lastKeys[key] || usedKeys[key] || kept[e.RunID] != nil || isLive(e.RunID) {
			refData(dataRefs, e.Outputs)
			continue
		}
		path := cacheStore.EntryPath(key)
		p.add(Item{Kind: KindCache, Path: path, Bytes: size(path),
			Why: fmt.Sprintf("cache entry of stage %s of run %s, which is not kept and no pipeline's last run used", e.Stage, orNone(e.RunID))})
	}
	// Run records.
	slices.SortFunc(dropped, func(a, b *record.Run) int { return strings.Compare(a.ID, b.ID) })
	for _, r := range dropped {
		path := store.Path(r.ID)
		p.add(Item{Kind: KindRun, Path: path, Bytes: size(path),
			Why: fmt.Sprintf("run of %s from %s: older than %s and not among its %d newest", r.Pipeline,
				r.StartedAt.UTC().Format("2006-01-02"), formatAge(in.Policy.OlderThan), in.Policy.KeepRuns)})
	}

	// Predictions: run directories under the prediction roots that no kept
	// run owns.
	for _, root := range sortedKeys(predRoots) {
		sets, _ := os.ReadDir(root)
		for _, set := range sets {
			if !set.IsDir() {
				continue
			}
			runDirs, _ := os.ReadDir(filepath.Join(root, set.Name()))
			for _, rd := range runDirs {
				id := rd.Name()
				if !rd.IsDir() || !record.ValidID(id) || kept[id] != nil || isLive(id) {
					continue
				}
				path := filepath.Join(root, set.Name(), id)
				why := "predictions of run " + id + ", which is not kept"
				if !slices.ContainsFunc(runs, func(r *record.Run) bool { return r.ID == id }) {
					why = "predictions of run " + id + ", which has no record"
				}
				p.add(Item{Kind: KindPredictions, Path: path, Bytes: size(path), Why: why})
			}
		}
	}

	// Data versions.
	for _, root := range sortedKeys(dataRoots) {
		names, _ := os.ReadDir(root)
		for _, n := range names {
			if !n.IsDir() {
				continue
			}
			versions, _ := os.ReadDir(filepath.Join(root, n.Name()))
			for _, v := range versions {
				path := filepath.Join(root, n.Name(), v.Name())
				if !v.IsDir() || dataRefs[dataKey{n.Name(), v.Name()}] {
					continue
				}
				if _, err := os.Stat(filepath.Join(path, "manifest.json")); err != nil {
					continue // not a complete version (maybe one being written)
				}
				if info, err := os.Stat(path); err != nil || (!liveSince.IsZero() && !info.ModTime().Before(liveSince.Add(-tmpStaleAfter))) {
					p.Notes = append(p.Notes, fmt.Sprintf("kept data version %s/%s: written while a run is in progress", n.Name(), v.Name()))
					continue
				}
				p.add(Item{Kind: KindData, Path: path, Bytes: size(path),
					Why: fmt.Sprintf("data version %s/%s: no kept run, cache entry or champion uses it", n.Name(), v.Name())})
			}
		}
	}

	// Temporary directories.
	tmp := filepath.Join(in.StateDir, "tmp")
	entries, _ := os.ReadDir(tmp)
	for _, e := range entries {
		info, err := e.Info()
		// Modification times are real: compare with the real clock.
		if err != nil || !e.IsDir() || time.Since(info.ModTime()) < tmpStaleAfter {
			continue
		}
		path := filepath.Join(tmp, e.Name())
		if !unlocked(filepath.Join(path, ".lock")) {
			continue
		}
		p.add(Item{Kind: KindTmp, Path: path, Bytes: size(path), Why: "temporary directory no process holds"})
	}

	// Venvs.
	venvs, _ := filepath.Glob(filepath.Join(in.StateDir, "venv-*"))
	current := map[string]bool{}
	for _, v := range in.CurrentVenvs {
		current[v] = true
	}
	for _, path := range venvs {
		name := filepath.Base(path)
		if info, err := os.Stat(path); err != nil || !info.IsDir() || current[name] {
			continue
		}
		switch {
		case in.CurrentVenvs == nil:
			p.Notes = append(p.Notes, fmt.Sprintf("kept %s: which venv the requirements map to is unknown", name))
			continue
		case len(live) > 0:
			p.Notes = append(p.Notes, fmt.Sprintf("kept %s: a run is in progress and may use it", name))
			continue
		case !unlocked(path + ".lock"):
			p.Notes = append(p.Notes, fmt.Sprintf("kept %s: it is being built", name))
			continue
		}
		it := Item{Kind: KindVenv, Path: path, Bytes: size(path), Why: "venv no requirements file maps to any more"}
		if _, err := os.Stat(path + ".lock"); err == nil {
			it.extra = append(it.extra, path+".lock")
		}
		p.add(it)
	}
	for _, dir := range []string{in.StateDir, store.Dir, filepath.Dir(cacheStore.EntryPath("x")), tmp} {
		p.trash(dir)
	}
	for _, root := range sortedKeys(dataRoots) {
		names, _ := os.ReadDir(root)
		for _, n := range names {
			p.trash(filepath.Join(root, n.Name()))
		}
	}
	for _, root := range sortedKeys(predRoots) {
		sets, _ := os.ReadDir(root)
		for _, set := range sets {
			p.trash(filepath.Join(root, set.Name()))
		}
	}
	for id := range live {
		p.Notes = append(p.Notes, "kept everything run "+id+" uses: it is in progress")
	}
	slices.Sort(p.Notes)
	return p, nil
}

// trash adds what an interrupted gc left in dir.
func (p *Plan) trash(dir string) {
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), trashPrefix) {
			path := filepath.Join(dir, e.Name())
			p.add(Item{Kind: KindTrash, Path: path, Bytes: size(path), Why: "left by a gc that was interrupted"})
		}
	}
}

func (p *Plan) add(it Item) {
	p.Items = append(p.Items, it)
	p.Bytes += it.Bytes
}

// ErrRunStarted is returned by Apply when a run started after the scan.
var ErrRunStarted = errors.New("a run started since gc looked; run gc again")

// Apply deletes the plan's items and returns how many bytes went. A run
// that started since the scan stops it before anything is deleted.
func (p *Plan) Apply() (int64, error) {
	live, err := liveRuns(p.stateDir)
	if err != nil {
		return 0, err
	}
	for id := range live {
		if _, ok := p.live[id]; !ok {
			return 0, fmt.Errorf("%w (%s)", ErrRunStarted, id)
		}
	}
	var freed int64
	var errs []error
	for _, kind := range applyOrder {
		for _, it := range p.Items {
			if it.Kind != kind {
				continue
			}
			if err := remove(it.Path); err != nil {
				errs = append(errs, err)
				continue
			}
			for _, f := range it.extra {
				_ = os.Remove(f)
			}
			freed += it.Bytes
		}
	}
	return freed, errors.Join(errs...)
}

// remove renames path away within its directory, then removes it: a
// reader never sees a half-deleted directory under its own name.
func remove(path string) error {
	if strings.HasPrefix(filepath.Base(path), trashPrefix) {
		return os.RemoveAll(path)
	}
	trash := filepath.Join(filepath.Dir(path), trashPrefix+strconv.Itoa(os.Getpid())+"-"+filepath.Base(path))
	if err := os.Rename(path, trash); err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("gc: %w", err)
	}
	if err := os.RemoveAll(trash); err != nil {
		return fmt.Errorf("gc: remove %s: %w", path, err)
	}
	return nil
}

// liveRuns returns the run ids whose lock owners are alive, with when
// each started.
func liveRuns(stateDir string) (map[string]time.Time, error) {
	live := map[string]time.Time{}
	owners, err := filepath.Glob(filepath.Join(stateDir, "locks", "*.owner"))
	if err != nil {
		return nil, err
	}
	for _, f := range owners {
		b, err := os.ReadFile(f)
		if err != nil {
			continue
		}
		var o lock.Owner
		if json.Unmarshal(b, &o) != nil || !o.Alive() {
			continue
		}
		id := o.RunID
		if id == "" {
			id = "(starting)"
		}
		live[id] = o.Since
	}
	return live, nil
}

// unlocked reports whether nobody holds the flock on path (a missing file
// is unlocked).
func unlocked(path string) bool {
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return true
	}
	l := flock.New(path)
	ok, err := l.TryLock()
	if err != nil || !ok {
		return false
	}
	_ = l.Unlock()
	return true
}

func refData(refs map[dataKey]bool, m map[string]string) {
	if m["data_name"] != "" && m["data_version"] != "" {
		refs[dataKey{m["data_name"], m["data_version"]}] = true
	}
}

// dataRoot derives a data root from a data stage's outputs:
// data_path = <root>/<data_name>/<data_version>.
func dataRoot(out map[string]string) (string, bool) {
	p := out["data_path"]
	if p == "" || !filepath.IsAbs(p) || filepath.Base(p) != out["data_version"] || filepath.Base(filepath.Dir(p)) != out["data_name"] {
		return "", false
	}
	return filepath.Dir(filepath.Dir(p)), true
}

// predictionsDir derives a run's predictions directory from an inference
// stage's outputs: predictions_path = <root>/<output_name>/<run id>/file.
func predictionsDir(out map[string]string, runID string) (string, bool) {
	p := out["predictions_path"]
	if p == "" || !filepath.IsAbs(p) || filepath.Base(filepath.Dir(p)) != runID {
		return "", false
	}
	return filepath.Dir(p), true
}

// size is the apparent size of a file or a directory tree, in bytes.
func size(path string) int64 {
	var n int64
	_ = filepath.WalkDir(path, func(_ string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

func sortedKeys(m map[string]bool) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func orNone(s string) string {
	if s == "" {
		return "(none)"
	}
	return s
}

// formatAge prints a duration in days when it is whole days.
func formatAge(d time.Duration) string {
	if d > 0 && d%(24*time.Hour) == 0 {
		return strconv.Itoa(int(d/(24*time.Hour))) + "d"
	}
	return d.String()
}

// ParseAge parses a --older-than value: a Go duration ("36h") or a number
// of days ("30d").
func ParseAge(s string) (time.Duration, error) {
	if days, ok := strings.CutSuffix(s, "d"); ok {
		n, err := strconv.Atoi(days)
		if err != nil || n < 0 {
			return 0, fmt.Errorf("invalid age %q: want a number of days (30d) or a duration (36h)", s)
		}
		return time.Duration(n) * 24 * time.Hour, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil || d < 0 {
		return 0, fmt.Errorf("invalid age %q: want a number of days (30d) or a duration (36h)", s)
	}
	return d, nil
}
