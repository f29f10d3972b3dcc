// Package executor is the contract between the runner and whatever runs a
// stage: the [Executor] interface, the [Task] it receives, the [Event]s it
// streams and the [Result] it returns, plus a [Registry] of named
// factories.
//
// Built-in executors (local, databricks) and third-party plugins implement
// the same interface; pipectl reaches every one of them through the gRPC
// plugin protocol (package plugin), so the runner never knows which kind it
// talks to.
package executor
