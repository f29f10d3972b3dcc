// Package diag holds diagnostics: problems found in specs or plans, with a
// severity, a one-line summary, the field path, the source position and,
// where it is obvious, the fix. Diagnostics are for people; errors are for
// code. They are collected (never returned one at a time), sorted by
// position and printed once, at the top of the command.
package diag
