package plugin

import (
	"context"

	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/pipectl/pipectl/engine/plugin/proto/executor/v1"
)

// grpcPlugin is the go-plugin glue: it registers the executor service on
// the plugin's gRPC server and hands the host a generated client. The host
// only ever sees executor.Executor (see Client).
type grpcPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	// server is the plugin side; nil on the host.
	server *server
}

var _ goplugin.GRPCPlugin = (*grpcPlugin)(nil)

// GRPCServer implements goplugin.GRPCPlugin.
func (p *grpcPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterExecutorServer(s, p.server)
	return nil
}

// GRPCClient implements goplugin.GRPCPlugin.
func (p *grpcPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return pb.NewExecutorClient(c), nil
}
