// Package executortest holds what tests of executors share: the exit
// values of the stage contract and the Result each one must become, so
// that every executor is checked against the same table.
package executortest
