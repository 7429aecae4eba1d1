package local

import (
	"context"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"

	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
)

// bearer sends a token with every call; the local gateway is plaintext on loopback.
type bearer string

func (b bearer) GetRequestMetadata(context.Context, ...string) (map[string]string, error) {
	return map[string]string{"authorization": "Bearer " + string(b)}, nil
}
func (bearer) RequireTransportSecurity() bool { return false }

// Dial connects to the local gateway as the pilot factory of a VO. Close the connection when done.
func (g *Gateway) Dial(vo string) (gatewayv1.GatewayClient, *grpc.ClientConn, error) {
	conn, err := grpc.NewClient(g.Address, grpc.WithTransportCredentials(insecure.NewCredentials()), grpc.WithPerRPCCredentials(bearer(g.Tokens[vo])))
	if err != nil {
		return nil, nil, err
	}
	return gatewayv1.NewGatewayClient(conn), conn, nil
}
