package secret

import (
	"slices"
	"strings"
	"testing"
)

func TestName(t *testing.T) {
	tests := map[string]bool{
		"password": true, "db_password": true, "DB_PASSWORD": true, "client_secret": true, "secret": true,
		"api_key": true, "apiKey": true, "access_key": true, "private_key": true, "token": true,
		"api_token": true, "hfToken": true, "credentials": true, "apikey": true,
		"max_tokens": false, "token_pattern": false, "secret_scope": false, "password_file": false,
		"key": false, "sort_key": false, "data_path": false, "model_name": false, "source": false,
		"tokenizer": false, "": false,
	}
	for name, want := range tests {
		if got := Name(name); got != want {
			t.Errorf("Name(%q) = %v, want %v", name, got, want)
		}
	}
}

func TestValueAndText(t *testing.T) {
	dapi := "dapi" + strings.Repeat("0123456789abcdef", 2)
	tests := map[string]struct {
		in, masked string
	}{
		"databricks token":  {dapi, Mask},
		"token in a url":    {"https://host/x?t=" + dapi + "&y=1", "https://host/x?t=" + Mask + "&y=1"},
		"password in a url": {"postgres://me:hunter2@db:5432/x", "postgres://me:" + Mask + "@db:5432/x"},
		"github token":      {"ghp_" + strings.Repeat("A", 36), Mask},
		"aws key id":        {"AKIAIOSFODNN7EXAMPLE", Mask},
		"plain text":        {"data/sample/financial_news.csv", "data/sample/financial_news.csv"},
		"short dapi":        {"dapi123", "dapi123"},
		"model uri":         {"models:/clf@champion", "models:/clf@champion"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			if got := Text(tc.in); got != tc.masked {
				t.Errorf("Text(%q) = %q, want %q", tc.in, got, tc.masked)
			}
			if got, want := Value(tc.in), tc.in != tc.masked; got != want {
				t.Errorf("Value(%q) = %v, want %v", tc.in, got, want)
			}
		})
	}
}

func TestParamsAndFind(t *testing.T) {
	dapi := "dapi" + strings.Repeat("f", 32)
	got := Params(map[string]string{"api_token": "abc", "url": "https://x/?k=" + dapi, "ref": "${stages.a.outputs.b}", "password": "${stages.a.outputs.p}", "n": "3"})
	want := map[string]string{"api_token": Mask, "url": "https://x/?k=" + Mask, "ref": "${stages.a.outputs.b}", "password": "${stages.a.outputs.p}", "n": "3"}
	for k := range want {
		if got[k] != want[k] {
			t.Errorf("Params[%s] = %q, want %q", k, got[k], want[k])
		}
	}
	var found []string
	Find(map[string]any{
		"password": "x", "nested": map[string]any{"api_key": "y", "ok": "z"},
		"urls": []any{"fine", "https://u:pw@h/"}, "max_tokens": 5, "secret": 12,
	}, "", func(p string) { found = append(found, p) })
	slices.Sort(found)
	if w := []string{"nested.api_key", "password", "secret", "urls.1"}; !slices.Equal(found, w) {
		t.Errorf("Find = %v, want %v", found, w)
	}
}
