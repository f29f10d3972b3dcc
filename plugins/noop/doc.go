// Package noop is an executor that runs nothing: every stage succeeds at
// once with placeholder outputs. It exercises the DAG, the runner and the
// plugin protocol without compute, e.g. to measure dispatch overhead or to
// check a pipeline's wiring.
//
// Custom stages may steer it with parameters, for tests: noop_sleep (a
// duration to wait, honouring cancellation) and noop_fail ("true" fails the
// attempt; "retryable" fails it as retryable).
package noop
