package databricks

import (
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"time"

	sdk "github.com/databricks/databricks-sdk-go"
	"github.com/databricks/databricks-sdk-go/apierr"
	"github.com/databricks/databricks-sdk-go/config"
)

// envLoader is the SDK's environment loader reading an injected
// environment instead of the process's: every attribute the SDK reads
// from DATABRICKS_* (and ARM_*, GOOGLE_*, ACTIONS_ID_TOKEN_*) variables.
type envLoader struct{ env Env }

func (l envLoader) Name() string { return "environment" }

func (l envLoader) Configure(cfg *config.Config) error {
	for _, attr := range config.ConfigAttributes {
		if !attr.IsZero(cfg) {
			continue // set by the target's config
		}
		for _, name := range attr.EnvVars {
			if v := l.env.get(name); v != "" {
				if err := attr.SetS(cfg, v); err != nil {
					return fmt.Errorf("%s: %w", name, err)
				}
				break
			}
		}
	}
	return nil
}

// Client is an authenticated workspace client and the secrets it holds,
// for redaction.
type Client struct {
	W *sdk.WorkspaceClient
	// Host is the workspace URL.
	Host string
	red  *redactor
	// id is the credentials' identity, read once (per-user mode).
	id identity
}

// NewClient builds a workspace client with the SDK's unified auth: the
// target's host or profile first, then the environment (DATABRICKS_HOST,
// DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID/SECRET, DATABRICKS_AUTH_TYPE=
// github-oidc with ACTIONS_ID_TOKEN_REQUEST_*, DATABRICKS_CONFIG_PROFILE,
// ...), then ~/.databrickscfg (HOME from env). transport may wrap the
// HTTP transport (nil: the default). Errors are redacted.
func NewClient(c *Config, env Env, transport http.RoundTripper) (*Client, error) {
	return newClient(c, env, transport, nil)
}

// newClient is NewClient telling progress while it waits for an
// unreachable workspace (probe.go). A workspace that does not answer
// within the target's connect_timeout is an error here, before any call;
// the SDK's own retries are bounded by the same timeout (its default is 5
// minutes of silence).
func newClient(c *Config, env Env, transport http.RoundTripper, progress func(string)) (*Client, error) {
	silenceSDKLogger()
	timeout := c.connectTimeout()
	cfg := &config.Config{
		Host:                c.Host,
		Profile:             c.Profile,
		Loaders:             []config.Loader{envLoader{env}, config.ConfigFile},
		HTTPTransport:       transport,
		RetryTimeoutSeconds: int(max(timeout/time.Second, 1)),
	}
	if env.get("DATABRICKS_CONFIG_FILE") == "" && env.get("HOME") != "" {
		cfg.ConfigFile = filepath.Join(env.get("HOME"), ".databrickscfg")
	}
	base := transport
	if rt, ok := transport.(*retryTransport); ok {
		base = rt.base // any answer will do: no waiting out a 503
	}
	var unreachable error
	cfg.HostMetadataResolver = probingResolver(cfg, probe{base: base, timeout: timeout, progress: progress}, &unreachable)
	red := newRedactor(env)
	w, err := sdk.NewWorkspaceClient((*sdk.Config)(cfg))
	if unreachable != nil {
		return nil, red.err(unreachable)
	}
	if err != nil {
		return nil, red.err(fmt.Errorf("databricks auth: %w", err))
	}
	red.addConfig(w.Config)
	return &Client{W: w, Host: strings.TrimSuffix(w.Config.Host, "/"), red: red}, nil
}

// redactor removes secrets from text: the credentials in the environment
// and in the resolved SDK config (e.g. from ~/.databrickscfg).
type redactor struct{ secrets []string }

// secretEnv are environment variables that hold credentials.
var secretEnv = []string{"DATABRICKS_TOKEN", "DATABRICKS_CLIENT_SECRET", "DATABRICKS_PASSWORD", "ARM_CLIENT_SECRET",
	"GOOGLE_CREDENTIALS", "ACTIONS_ID_TOKEN_REQUEST_TOKEN", "SYSTEM_ACCESSTOKEN"}

func newRedactor(env Env) *redactor {
	r := &redactor{}
	for _, name := range secretEnv {
		r.add(env.get(name))
	}
	for _, attr := range config.ConfigAttributes {
		if attr.Sensitive {
			for _, name := range attr.EnvVars {
				r.add(env.get(name))
			}
		}
	}
	return r
}

func (r *redactor) add(s string) {
	if len(s) >= 4 && !slices.Contains(r.secrets, s) {
		r.secrets = append(r.secrets, s)
		// Longest first, so that a secret containing another is removed whole.
		slices.SortFunc(r.secrets, func(a, b string) int { return len(b) - len(a) })
	}
}

func (r *redactor) addConfig(cfg *config.Config) {
	for _, attr := range config.ConfigAttributes {
		if attr.Sensitive && !attr.IsZero(cfg) {
			r.add(attr.GetString(cfg))
		}
	}
}

// String redacts s.
func (r *redactor) String(s string) string {
	if r == nil {
		return s
	}
	for _, sec := range r.secrets {
		s = strings.ReplaceAll(s, sec, "***")
	}
	return s
}

// err redacts an error's message, keeping it unwrappable for errors.Is.
func (r *redactor) err(err error) error {
	if err == nil {
		return nil
	}
	msg := r.String(err.Error())
	if msg == err.Error() {
		return err
	}
	return &redactedError{msg: msg, err: err}
}

type redactedError struct {
	msg string
	err error
}

func (e *redactedError) Error() string { return e.msg }

// Unwrap lets errors.Is/As see the SDK's error kinds; their own messages
// are never printed.
func (e *redactedError) Unwrap() error { return e.err }

// fail describes a failed API call for people: what pipectl was doing,
// what Databricks answered and, for credentials, what to do. The result is
// redacted and still unwraps to the SDK's error.
func (c *Client) fail(what string, err error) error {
	var ae *apierr.APIError
	if errors.As(err, &ae) {
		var msg string
		switch ae.StatusCode {
		case http.StatusUnauthorized:
			msg = fmt.Sprintf("%s: Databricks did not accept the credentials (401 %s: %s); authenticate with DATABRICKS_TOKEN, DATABRICKS_CLIENT_ID and DATABRICKS_CLIENT_SECRET, DATABRICKS_AUTH_TYPE=github-oidc or a ~/.databrickscfg profile",
				what, ae.ErrorCode, ae.Message)
		case http.StatusForbidden:
			msg = fmt.Sprintf("%s: Databricks refused (403 %s: %s): the token may be invalid or revoked, or the identity lacks a permission (docs/DATABRICKS.md lists the grants)",
				what, ae.ErrorCode, ae.Message)
		default:
			msg = fmt.Sprintf("%s: %s (%d %s)", what, ae.Message, ae.StatusCode, ae.ErrorCode)
		}
		return &redactedError{msg: c.red.String(msg), err: err}
	}
	return c.red.err(fmt.Errorf("%s: %w", what, err))
}
