// Package engine is the root of pipectl's engine: spec loading ([spec]),
// diagnostics ([diag]), the stage graph ([dag]), planning ([plan]), the
// executor contract ([executor]), the plugin protocol and the runner.
//
// The engine never imports plugins/ or cmd/: executors reach it only through
// the [executor.Executor] interface.
package engine
