// Package atomicfile writes files so that readers see either the old
// content or the new, never a torn mix: data goes to a temporary file in
// the same directory, is synced, and is renamed over the target; the
// directory is synced too so the rename survives a crash.
package atomicfile
