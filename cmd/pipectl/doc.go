// The pipectl command: one file per command (xxx_cmd.go), a kong CLI struct
// in cli.go and the process-level wiring (exit codes, signals, the executor
// registry) in app.go. main only calls run, so that every deferred cleanup
// runs before the process exits.
package main
