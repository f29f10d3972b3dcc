package secret

import (
	"regexp"
	"slices"
	"strconv"
	"strings"
	"unicode"
)

// Mask replaces a secret in output.
const Mask = "***"

// secretWords make a name secret wherever they appear in it.
var secretWords = map[string]bool{
	"password": true, "passwd": true, "passphrase": true, "secret": true,
	"credential": true, "credentials": true, "apikey": true,
}

// notSecretLast are last words that make a name about a secret, not one:
// secret_scope, password_file, token_env.
var notSecretLast = map[string]bool{
	"scope": true, "name": true, "env": true, "var": true, "file": true, "path": true, "ref": true,
	"length": true, "policy": true, "pattern": true,
}

// keyQualifiers make a name ending in key secret: api_key, access_key,
// private_key, secret_key, signing_key.
var keyQualifiers = map[string]bool{
	"api": true, "access": true, "private": true, "secret": true, "signing": true, "encryption": true, "account": true,
}

// valueRE matches values shaped like well-known credentials.
var valueRE = regexp.MustCompile(strings.Join([]string{
	`dapi[0-9a-f]{32}(-[0-9]+)?`,                                   // Databricks personal access token
	`dose[0-9a-f]{32}`,                                             // Databricks OAuth secret
	`gh[pousr]_[A-Za-z0-9]{36,}`,                                   // GitHub tokens
	`github_pat_[A-Za-z0-9_]{22,}`,                                 // GitHub fine-grained token
	`(AKIA|ASIA)[0-9A-Z]{16}`,                                      // AWS access key id
	`xox[abposr]-[A-Za-z0-9-]{10,}`,                                // Slack tokens
	`sk-[A-Za-z0-9_-]{20,}`,                                        // OpenAI-style API keys
	`-----BEGIN [A-Z ]*PRIVATE KEY-----`,                           // PEM private keys
	`eyJ[A-Za-z0-9_-]{10,}\.eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]+`, // JWT
	`://[^/\s:@]+:[^/\s@]+@`,                                       // a password in a URL
}, "|"))

// words splits a name into lower-case words at '_', '-', '.', spaces and
// camelCase boundaries: "apiToken" → [api token].
func words(name string) []string {
	var out []string
	var cur []rune
	flush := func() {
		if len(cur) > 0 {
			out = append(out, strings.ToLower(string(cur)))
			cur = cur[:0]
		}
	}
	prevLower := false
	for _, r := range name {
		switch {
		case !unicode.IsLetter(r) && !unicode.IsDigit(r):
			flush()
			prevLower = false
			continue
		case unicode.IsUpper(r) && prevLower:
			flush()
		}
		cur = append(cur, r)
		prevLower = unicode.IsLower(r) || unicode.IsDigit(r)
	}
	flush()
	return out
}

// Name reports whether a parameter or field name says it holds a
// credential: it contains password, secret, credential or apikey, or ends
// in token (api_token, hf_token — not max_tokens or token_pattern) or in a
// qualified key (api_key, access_key, private_key).
func Name(name string) bool {
	w := words(name)
	if len(w) == 0 || notSecretLast[w[len(w)-1]] {
		return false
	}
	for _, x := range w {
		if secretWords[x] {
			return true
		}
	}
	if n := len(w); n > 0 {
		last := w[n-1]
		if last == "token" {
			return true
		}
		if last == "key" && n > 1 && keyQualifiers[w[n-2]] {
			return true
		}
	}
	return false
}

// Value reports whether a string has the shape of a known credential.
func Value(s string) bool { return valueRE.MatchString(s) }

// Is reports whether the value of a parameter named name is a secret: by
// its name or by its shape. Empty values and references (${...}) are not.
func Is(name, value string) bool {
	if value == "" || (strings.HasPrefix(value, "${") && strings.HasSuffix(value, "}")) {
		return false
	}
	return Name(name) || Value(value)
}

// Params returns params with every secret value masked: by name, or by
// shape anywhere inside the value (a token in a URL or a JSON list).
func Params(params map[string]string) map[string]string {
	if params == nil {
		return nil
	}
	out := make(map[string]string, len(params))
	for k, v := range params {
		out[k] = String(k, v)
	}
	return out
}

// String masks one parameter's value: all of it when the name says it is
// a secret, else each credential-shaped part of it.
func String(name, value string) string {
	if Name(name) && value != "" && !(strings.HasPrefix(value, "${") && strings.HasSuffix(value, "}")) {
		return Mask
	}
	return Text(value)
}

// Text masks every credential-shaped part of free text (a log line, an
// error message).
func Text(s string) string {
	if !valueRE.MatchString(s) {
		return s
	}
	return valueRE.ReplaceAllStringFunc(s, func(m string) string {
		if strings.HasPrefix(m, "://") {
			user := m[3 : strings.IndexByte(m[3:], ':')+3]
			return "://" + user + ":" + Mask + "@"
		}
		return Mask
	})
}

// Find walks a decoded JSON value (a stage's params, a target's config)
// and calls found with the dotted path of every secret in it.
func Find(v any, path string, found func(path string)) {
	switch x := v.(type) {
	case map[string]any:
		for k, e := range x {
			p := k
			if path != "" {
				p = path + "." + k
			}
			if s, ok := e.(string); ok {
				if Is(k, s) {
					found(p)
				}
				continue
			}
			if Name(k) && e != nil {
				if _, isMap := e.(map[string]any); !isMap {
					found(p)
					continue
				}
			}
			Find(e, p, found)
		}
	case []any:
		for i, e := range x {
			p := path + "." + strconv.Itoa(i)
			if s, ok := e.(string); ok {
				if Value(s) {
					found(p)
				}
				continue
			}
			Find(e, p, found)
		}
	}
}

// Values returns the values of params whose name says they are secrets
// (not references), for masking them wherever they show up later, such as
// a notebook printing one in its log.
func Values(params map[string]string) []string {
	var out []string
	for k, v := range params {
		if Name(k) && len(v) >= 4 && !(strings.HasPrefix(v, "${") && strings.HasSuffix(v, "}")) {
			out = append(out, v)
		}
	}
	return out
}

// Redactor masks given secret values and every credential-shaped part of
// text.
type Redactor struct{ values []string }

// NewRedactor returns a Redactor for values (shorter than 4 characters are
// ignored: masking "ab" everywhere would garble logs and hide nothing).
func NewRedactor(values []string) *Redactor {
	r := &Redactor{}
	for _, v := range values {
		if len(v) >= 4 {
			r.values = append(r.values, v)
		}
	}
	// Longest first, so that a secret containing another is masked whole.
	slices.SortFunc(r.values, func(a, b string) int { return len(b) - len(a) })
	return r
}

// String masks s.
func (r *Redactor) String(s string) string {
	if r != nil {
		for _, v := range r.values {
			s = strings.ReplaceAll(s, v, Mask)
		}
	}
	return Text(s)
}
