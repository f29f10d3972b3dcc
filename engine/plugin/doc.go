// Package plugin carries the executor protocol over hashicorp/go-plugin
// with gRPC: the handshake, the adapters between [executor.Executor] and
// the generated gRPC service (proto/executor/v1), starting and discovering
// plugin processes, and [Serve], the public SDK a team uses to write an
// executor of its own:
//
//	func main() { plugin.Serve(myExecutor{}) }
//
// # Host side
//
// [Start] runs a plugin binary, performs the go-plugin handshake (magic
// cookie, protocol version [executor.ProtocolVersion] in VersionedPlugins,
// gRPC only), calls Describe and refuses an executor whose name or protocol
// differs. The returned [*Client] implements [executor.Executor] and
// [io.Closer]. It passes the caller's context into every RPC; cancelling
// the context of Run sends a Cancel for that call and waits (up to
// [Config.CancelGrace]) for the plugin to report how the stage ended, so
// the plugin has stopped its work (killed its processes, cancelled its
// remote run) before Run returns. Transport failures become errors that
// name the executor, e.g. "executor "shell" exited unexpectedly (signal:
// killed) while running stage train", and match [ErrExited]. A plugin
// that died is started again on the next call.
//
// [Discover] finds third-party executors by file name (pipectl-executor-
// <name>) in the project's .pipectl/plugins, ~/.pipectl/plugins and PATH,
// without starting them; [PluginEnv] builds their environment from an
// allow-list plus the variables a target passes ([WithPassEnv]).
//
// # Plugin side
//
// [Serve] serves any [executor.Executor]. It logs JSON to stderr (pipectl
// shows those lines through its own logger), never writes to stdout before
// the handshake, recovers panics into executor errors, and exits when
// pipectl shuts it down, when it receives SIGTERM, or when its parent
// process disappears (pipectl was killed with SIGKILL): in-flight runs are
// cancelled, given [ServeOptions.ShutdownGrace] to clean up, and the
// executor is closed if it implements [io.Closer].
package plugin
