package main

import "github.com/pipectl/pipectl/engine/executor"

// builtinExecutors are the executors compiled into pipectl. They are still
// reached through the plugin protocol: pipectl re-executes itself with a
// hidden command that serves one of them, so built-ins and third-party
// plugins take the same path.
var builtinExecutors = map[string]func() executor.Executor{}
