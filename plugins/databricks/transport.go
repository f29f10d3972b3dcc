package databricks

import (
	"context"
	"io"
	"net/http"
	"strconv"
	"time"
)

// The SDK (v0.175) retries 429 and 503 answers with its own linear backoff
// and ignores Retry-After. retryTransport sits under it and waits as long
// as the workspace asks before it retries itself, so a rate-limited
// workspace is not hammered; when its attempts are used up, the SDK's own
// retries take over.
type retryTransport struct {
	base http.RoundTripper
	// attempts is how many times one request is retried here.
	attempts int
	// maxWait caps one wait, whatever Retry-After says.
	maxWait time.Duration
	// budget caps the waits for one request: the SDK abandons a request
	// after 60 s without traffic, so longer waits are left to its retries.
	budget time.Duration
}

func newRetryTransport(base http.RoundTripper) *retryTransport {
	if base == nil {
		base = http.DefaultTransport
	}
	return &retryTransport{base: base, attempts: 8, maxWait: 40 * time.Second, budget: 45 * time.Second}
}

// retryNoticeKey carries a func(status int, wait time.Duration) in a
// request's context, told about each wait (for a log event).
type retryNoticeKey struct{}

func withRetryNotice(ctx context.Context, f func(status int, wait time.Duration)) context.Context {
	return context.WithValue(ctx, retryNoticeKey{}, f)
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	ctx := req.Context()
	var waited time.Duration
	for attempt := 0; ; attempt++ {
		resp, err := t.base.RoundTrip(req)
		if err != nil || (resp.StatusCode != http.StatusTooManyRequests && resp.StatusCode != http.StatusServiceUnavailable) ||
			attempt >= t.attempts || (req.Body != nil && req.Body != http.NoBody && req.GetBody == nil) {
			return resp, err
		}
		wait := retryAfter(resp.Header.Get("Retry-After"))
		if wait <= 0 {
			wait = time.Second << min(attempt, 5) // 1s, 2s, 4s ... 32s
		}
		wait = min(wait, t.maxWait)
		if waited+wait > t.budget {
			return resp, nil // the SDK backs off and asks again
		}
		waited += wait
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 1<<16))
		resp.Body.Close()
		if f, ok := ctx.Value(retryNoticeKey{}).(func(int, time.Duration)); ok {
			f(resp.StatusCode, wait)
		}
		timer := time.NewTimer(wait)
		select {
		case <-ctx.Done():
			timer.Stop()
			return nil, ctx.Err()
		case <-timer.C:
		}
		next := req.Clone(ctx)
		if req.GetBody != nil {
			body, err := req.GetBody()
			if err != nil {
				return nil, err
			}
			next.Body = body
		}
		req = next
	}
}

// retryAfter parses a Retry-After header: seconds or an HTTP date.
func retryAfter(h string) time.Duration {
	if h == "" {
		return 0
	}
	if s, err := strconv.Atoi(h); err == nil {
		return time.Duration(s) * time.Second
	}
	if t, err := http.ParseTime(h); err == nil {
		return time.Until(t)
	}
	return 0
}
