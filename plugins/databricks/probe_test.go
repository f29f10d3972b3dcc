package databricks

import (
	"bytes"
	"net"
	"strings"
	"sync"
	"testing"
	"time"
)

// An unreachable workspace fails within connect_timeout, saying which
// host and why, after progress lines for the attempts: a closed port
// (connection refused) and a listener that accepts and never answers.
func TestUnreachableWorkspaceFailsWithinConnectTimeout(t *testing.T) {
	closed, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closedAddr := closed.Addr().String()
	closed.Close()

	silent, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer silent.Close()
	var mu sync.Mutex
	var held []net.Conn
	go func() {
		for {
			c, err := silent.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c) // accepted, never answered
			mu.Unlock()
		}
	}()
	defer func() {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range held {
			c.Close()
		}
	}()

	for _, tc := range []struct{ name, addr, why string }{
		{"closed port", closedAddr, "connection refused"},
		{"silent listener", silent.Addr().String(), "no answer"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host := "http://" + tc.addr
			env := Env(func(k string) string {
				return map[string]string{"DATABRICKS_HOST": host, "DATABRICKS_TOKEN": "dapi-probe-secret"}[k]
			})
			var stderr bytes.Buffer
			e := &Executor{Env: env, Stderr: &stderr}
			cfg := &Config{ConnectTimeout: "4s"}
			start := time.Now()
			_, err := e.client(cfg)
			took := time.Since(start)
			t.Logf("%s: failed after %s\n%s", tc.name, took.Round(10*time.Millisecond), stderr.String())
			if err == nil {
				t.Fatal("client of an unreachable workspace: no error")
			}
			if took > 5*time.Second {
				t.Errorf("took %s; connect_timeout is 4s", took)
			}
			for _, want := range []string{"cannot reach the Databricks workspace " + host + " within 4s", tc.why, "databricks.connect_timeout"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("error %q does not say %q", err, want)
				}
			}
			if !strings.Contains(stderr.String(), "databricks: waiting for "+host+": "+tc.why+" (attempt 1, ") {
				t.Errorf("no progress line on stderr:\n%s", stderr.String())
			}
			if strings.Contains(stderr.String()+err.Error(), "dapi-probe-secret") {
				t.Error("the token leaked")
			}
			// A later stage fails at once.
			start = time.Now()
			if _, err := e.client(cfg); err == nil || time.Since(start) > time.Second {
				t.Errorf("second client: err %v after %s; want the remembered failure at once", err, time.Since(start))
			}
		})
	}
}
