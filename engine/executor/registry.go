package executor

import (
	"context"
	"errors"
	"fmt"
	"io"
	"slices"
	"sort"
	"strings"
	"sync"
)

// Factory starts an executor. The returned executor may implement
// io.Closer; the registry closes it when the registry is closed.
type Factory func(ctx context.Context) (Executor, error)

// ErrUnknown is returned by Open for a name nothing provides.
var ErrUnknown = errors.New("unknown executor")

// Registry maps executor names to factories and keeps the executors it
// opened, one per name, until Close.
type Registry struct {
	mu        sync.Mutex
	factories map[string]Factory
	sources   map[string]string
	open      map[string]Executor
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry {
	return &Registry{factories: map[string]Factory{}, sources: map[string]string{}, open: map[string]Executor{}}
}

// Register adds or replaces the factory for name; source says where it
// comes from ("built-in", or a plugin's path) for listings.
func (r *Registry) Register(name, source string, f Factory) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.factories[name] = f
	r.sources[name] = source
}

// Has reports whether name is registered.
func (r *Registry) Has(name string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	_, ok := r.factories[name]
	return ok
}

// Names returns the registered names, sorted.
func (r *Registry) Names() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	names := make([]string, 0, len(r.factories))
	for n := range r.factories {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Source says where name comes from.
func (r *Registry) Source(name string) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.sources[name]
}

// Open returns the executor for name, starting it on first use. Concurrent
// callers share one instance.
func (r *Registry) Open(ctx context.Context, name string) (Executor, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if e, ok := r.open[name]; ok {
		return e, nil
	}
	f, ok := r.factories[name]
	if !ok {
		names := slices.Sorted(func(yield func(string) bool) {
			for n := range r.factories {
				if !yield(n) {
					return
				}
			}
		})
		return nil, fmt.Errorf("%w %q (known: %s)", ErrUnknown, name, strings.Join(names, ", "))
	}
	e, err := f(ctx)
	if err != nil {
		return nil, fmt.Errorf("start executor %s: %w", name, err)
	}
	r.open[name] = e
	return e, nil
}

// Close closes every executor the registry opened, in name order, and
// returns the errors joined.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	var errs []error
	for _, name := range slices.Sorted(func(yield func(string) bool) {
		for n := range r.open {
			if !yield(n) {
				return
			}
		}
	}) {
		if c, ok := r.open[name].(io.Closer); ok {
			if err := c.Close(); err != nil {
				errs = append(errs, fmt.Errorf("close executor %s: %w", name, err))
			}
		}
		delete(r.open, name)
	}
	return errors.Join(errs...)
}
