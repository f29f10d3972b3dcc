package plugin

import (
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/pipectl/pipectl/engine/executor"
)

// The magic cookie tells a plugin binary that pipectl started it. It is not
// a secret and not authentication (see AutoMTLS and checksums for that).
// It must NEVER change: every executor ever built checks for it.
const (
	MagicCookieKey   = "PIPECTL_EXECUTOR_PLUGIN"
	MagicCookieValue = "5e1f2c3a9b8d4e7f-pipectl-executor"
)

// pluginName is the single plugin each executor binary serves.
const pluginName = "executor"

// maxMessageSize bounds one gRPC message in either direction. The default
// (4 MiB) is too small for large target configurations or outputs; logs
// stream as many small events instead.
const maxMessageSize = 256 << 20

// handshake is shared by host and plugins. The protocol version lives in
// VersionedPlugins, not here.
var handshake = goplugin.HandshakeConfig{
	MagicCookieKey:   MagicCookieKey,
	MagicCookieValue: MagicCookieValue,
}

// versionedPlugins offers p under the given protocol version.
func versionedPlugins(protocol int, p *grpcPlugin) map[int]goplugin.PluginSet {
	return map[int]goplugin.PluginSet{protocol: {pluginName: p}}
}

// LaunchedByPipectl reports whether this process was started by pipectl as
// an executor plugin (the magic cookie is set). getenv is usually
// os.Getenv.
func LaunchedByPipectl(getenv func(string) string) bool {
	return getenv(MagicCookieKey) == MagicCookieValue
}

// protocolVersion is the protocol this build speaks.
const protocolVersion = executor.ProtocolVersion
