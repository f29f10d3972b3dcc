// Package proc runs child processes the way pipectl's executors need them:
//
//   - in a new process group, so that stopping a stage stops everything it
//     started (a notebook's own subprocesses, pip's build backends, the
//     workers of a server);
//   - with stdout and stderr delivered line by line, as valid UTF-8, while
//     the process runs;
//   - stopped with SIGTERM to the group, then SIGKILL after a grace period,
//     when the caller's context ends; leftovers of the group are killed when
//     its leader exits;
//   - optionally under a guard (a few lines of standard-library Python, see
//     guard.py) that stops the group when this process dies, even by
//     SIGKILL, so no notebook or server outlives pipectl.
//
// Unix: process groups and signals are what make this sound. Elsewhere
// (Windows) it builds, but a stopped process is killed at once and alone.
package proc
