package cache

import (
	"strings"
	"testing"

	"github.com/pipectl/pipectl/engine/secret"
)

// TestDiffMasksSecrets: plan --explain prints what changed; a parameter
// that looks like a credential says it changed without either value.
func TestDiffMasksSecrets(t *testing.T) {
	old := Components{Params: map[string]string{"api_token": "old-s3cr3t", "n": "1"}}
	cur := Components{Params: map[string]string{"api_token": "new-s3cr3t", "n": "2", "password": "added-s3cr3t"}}
	var details []string
	for _, c := range Diff(old, cur) {
		details = append(details, c.Detail)
	}
	got := strings.Join(details, "\n")
	for _, want := range []string{"api_token: changed (" + secret.Mask + ")", "password: added (" + secret.Mask + ")", "n: 1 → 2"} {
		if !strings.Contains(got, want) {
			t.Errorf("details lack %q:\n%s", want, got)
		}
	}
	if strings.Contains(got, "s3cr3t") {
		t.Errorf("details show a secret:\n%s", got)
	}
}
