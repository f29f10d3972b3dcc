package cache

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
)

// KeyVersion changes when the key's definition changes, so that old
// entries stop matching instead of matching wrongly.
const KeyVersion = 1

// Components are everything a stage's key is made of, kept in each entry
// so that a miss can say what changed.
type Components struct {
	Version int `json:"v"`
	// Stage is the stage's name: notebooks get it (pipectl_stage) and
	// may act on it, so two stages never share a result.
	Stage string `json:"stage"`
	Type  string `json:"type"`
	// Notebook is the stage's notebook, relative to the project root.
	Notebook string `json:"notebook"`
	// Notebooks maps the notebook and every notebook it %runs to the
	// SHA-256 of its content.
	Notebooks map[string]string `json:"notebooks"`
	// Packages maps each local package or module the notebooks import to
	// its files (relative to the project root) and their SHA-256.
	Packages map[string]map[string]string `json:"packages"`
	// Params are the parameters exactly as the notebook receives them.
	Params   map[string]string `json:"params"`
	Executor string            `json:"executor"`
	// Config is the target's configuration for the executor, as canonical
	// JSON.
	Config string `json:"config"`
	// Requirements is the requirements file (relative path) and
	// RequirementsSHA its content's SHA-256; both empty when there is none.
	Requirements    string `json:"requirements,omitempty"`
	RequirementsSHA string `json:"requirements_sha256,omitempty"`
	// Inputs maps each parameter that names an input (a file, a
	// registered model) to what the executor says it is now. Stages
	// without inputs have none, and keep the keys they had before inputs
	// were keyed.
	Inputs map[string]Input `json:"inputs,omitempty"`
}

// Input is one input's fingerprint in a key (executor.Fingerprint).
type Input struct {
	Kind string `json:"kind"`
	// Ref is the parameter's value as written (with references
	// substituted), e.g. data.csv or models:/clf@champion.
	Ref string `json:"ref"`
	// Value identifies the content, e.g. sha256:… or a model version.
	Value string `json:"value"`
	// Resolved is what the notebook receives instead of Ref, when the
	// executor resolved it (models:/clf/25 for models:/clf@champion).
	Resolved string `json:"resolved,omitempty"`
}

// Key returns the cache key: the SHA-256 of the components' JSON (map keys
// sorted, so the encoding is canonical).
func (c Components) Key() string {
	c.Version = KeyVersion
	b, err := json.Marshal(c)
	if err != nil {
		panic(err) // maps of strings always marshal
	}
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// CanonicalJSON re-encodes a JSON document with sorted keys and no
// insignificant space; invalid or empty input is returned as is.
func CanonicalJSON(raw []byte) string {
	if len(raw) == 0 {
		return ""
	}
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		return string(raw)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return string(raw)
	}
	return string(b)
}
