package cache

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
)

// EntryPath is the file of key's entry.
func (s *Store) EntryPath(key string) string { return filepath.Join(s.Dir, "entries", key+".json") }

// Keys returns the key of every entry, for pruning (pipectl gc).
func (s *Store) Keys() ([]string, error) {
	entries, err := os.ReadDir(filepath.Join(s.Dir, "entries"))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var keys []string
	for _, e := range entries {
		if k, ok := strings.CutSuffix(e.Name(), ".json"); ok && keyRE.MatchString(k) {
			keys = append(keys, k)
		}
	}
	return keys, nil
}

// LastKeys returns every key a last-index names (see SetLast): the entries
// `plan --explain` diffs against.
func (s *Store) LastKeys() (map[string]bool, error) {
	files, err := filepath.Glob(filepath.Join(s.Dir, "last", "*.json"))
	if err != nil {
		return nil, err
	}
	keys := map[string]bool{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			return nil, err
		}
		var idx map[string]string
		if json.Unmarshal(b, &idx) != nil {
			continue
		}
		for _, k := range idx {
			keys[k] = true
		}
	}
	return keys, nil
}
