package databricks

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"syscall"
	"time"

	"github.com/databricks/databricks-sdk-go/config"
)

// DefaultConnectTimeout bounds the wait for an unreachable workspace
// (databricks.connect_timeout).
const DefaultConnectTimeout = 30 * time.Second

// connectTimeout is the target's connect_timeout, or the default.
func (c *Config) connectTimeout() time.Duration {
	if d, err := time.ParseDuration(c.ConnectTimeout); err == nil && d > 0 {
		return d
	}
	return DefaultConnectTimeout
}

// probe waits until the workspace answers HTTP at all, within timeout,
// retrying (1 s, 2 s, 4 s ... apart) while it cannot connect or gets no
// answer, and telling progress about each failed attempt. Any HTTP answer
// counts as reachable: credentials are checked by the first real call.
// It asks /.well-known/databricks-config, which needs no credentials and
// which the SDK reads first anyway.
type probe struct {
	base     http.RoundTripper
	timeout  time.Duration
	progress func(string)
}

// unreachableError says the workspace did not answer within the timeout.
type unreachableError struct {
	host    string
	timeout time.Duration
	last    error
}

func (e *unreachableError) Error() string {
	return fmt.Sprintf("cannot reach the Databricks workspace %s within %s: %s; check the host (DATABRICKS_HOST or databricks.host) and the network, or raise databricks.connect_timeout",
		e.host, e.timeout, describeNetErr(e.last))
}

func (e *unreachableError) Unwrap() error { return e.last }

func (p probe) wait(ctx context.Context, host string) error {
	host = strings.TrimSuffix(host, "/")
	start := time.Now()
	// The margin leaves time to report within the timeout of the command's
	// start, not only of the probe's.
	deadline := start.Add(p.timeout - min(p.timeout/10, 250*time.Millisecond))
	client := &http.Client{Transport: p.base, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	// One attempt may take a sixth of the timeout (at least 2 s): a host
	// that accepts and never answers is asked again, with a progress line.
	perAttempt := max(p.timeout/6, 2*time.Second)
	backoff := time.Second
	var last error
	for attempt := 1; ; attempt++ {
		remaining := time.Until(deadline)
		if remaining <= 0 {
			return &unreachableError{host: host, timeout: p.timeout, last: last}
		}
		actx, cancel := context.WithTimeout(ctx, min(remaining, perAttempt))
		last = p.once(actx, client, host)
		cancel()
		if last == nil {
			return nil
		}
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if time.Until(deadline) <= 0 {
			return &unreachableError{host: host, timeout: p.timeout, last: last}
		}
		if p.progress != nil {
			p.progress(fmt.Sprintf("databricks: waiting for %s: %s (attempt %d, %s of %s)", host, describeNetErr(last),
				attempt, time.Since(start).Round(time.Second), p.timeout))
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(min(backoff, time.Until(deadline))):
		}
		backoff = min(backoff*2, 8*time.Second)
	}
}

func (p probe) once(ctx context.Context, client *http.Client, host string) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, host+"/.well-known/databricks-config", nil)
	if err != nil {
		return err
	}
	resp, err := client.Do(req)
	if err != nil {
		return err
	}
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
	resp.Body.Close()
	return nil
}

// describeNetErr words a connection failure for people.
func describeNetErr(err error) string {
	var dns *net.DNSError
	switch {
	case errors.Is(err, syscall.ECONNREFUSED):
		return "connection refused"
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		return "no answer"
	case errors.As(err, &dns):
		return "unknown host " + dns.Name
	}
	var ue *url.Error
	if errors.As(err, &ue) {
		return ue.Err.Error()
	}
	return err.Error()
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// probingResolver is the SDK's host metadata resolver behind a probe: the
// SDK reads /.well-known/databricks-config while it resolves its config,
// with its own retries for minutes; this resolver waits at most the
// probe's timeout and records why the host is unreachable.
func probingResolver(cfg *config.Config, p probe, failed *error) config.HostMetadataResolver {
	return func(ctx context.Context, host string) (*config.HostMetadata, error) {
		if err := p.wait(ctx, host); err != nil {
			*failed = err
			return nil, err
		}
		mctx, cancel := context.WithTimeout(ctx, p.timeout)
		defer cancel()
		return cfg.DefaultHostMetadataResolver()(mctx, host)
	}
}

// progressTo writes progress lines to w (nil: nowhere).
func progressTo(w io.Writer) func(string) {
	if w == nil {
		return nil
	}
	return func(s string) { fmt.Fprintln(w, s) }
}
