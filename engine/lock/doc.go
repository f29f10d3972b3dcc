// Package lock keeps two pipectl processes from running the same pipeline
// on the same target at once.
//
// A lock is an advisory file lock (flock) on .pipectl/locks/<name>.lock,
// which the kernel releases when its process dies, plus an owner file
// (<name>.owner: PID, process start time, host, run id) written atomically
// after the lock is taken and removed before it is released. An owner file
// found by the next process to take the lock therefore names a process that
// died holding it: Acquire returns it as stale so the caller can mark that
// run interrupted. The owner's PID and start time are also checked directly
// (a live owner on this host is busy even where flock is not enforced, as
// on some network file systems), which is what [Owner.Alive] reports to
// readers such as `pipectl runs`.
package lock
