package auth

import (
	"context"
	"errors"

	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// GRPCStatus makes an Error a gRPC status (grpc-go and status.Code read this method): the gRPC API's one
// mapping of authentication errors.
func (e *Error) GRPCStatus() *status.Status {
	code := codes.Unauthenticated
	if errors.Is(e.Kind, ErrPermissionDenied) {
		code = codes.PermissionDenied
	}
	return status.New(code, e.Msg)
}

type identityKey struct{}

// FromContext returns the identity the interceptors authenticated.
func FromContext(ctx context.Context) (*Identity, bool) {
	id, ok := ctx.Value(identityKey{}).(*Identity)
	return id, ok
}

// WithIdentity returns ctx carrying id.
func WithIdentity(ctx context.Context, id *Identity) context.Context {
	return context.WithValue(ctx, identityKey{}, id)
}

// ScopeFunc names the scope a gRPC method (its full name) requires; false refuses the method. An empty
// scope makes the method public: no authentication (health checks).
type ScopeFunc func(fullMethod string) (string, bool)

func (a *Authenticator) authorize(ctx context.Context, method string, scopes ScopeFunc) (context.Context, error) {
	scope, ok := scopes(method)
	if ok && scope == "" {
		return ctx, nil
	}
	id, err := a.Authenticate(ctx)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, permissionDenied("method %s is not allowed", method)
	}
	if scope != "" && !id.HasScope(scope) {
		return nil, permissionDenied("token lacks scope %s (has %v)", scope, id.Scopes)
	}
	return WithIdentity(ctx, id), nil
}

// UnaryInterceptor authenticates each unary call and checks its scope.
func (a *Authenticator) UnaryInterceptor(scopes ScopeFunc) grpc.UnaryServerInterceptor {
	return func(ctx context.Context, req any, info *grpc.UnaryServerInfo, handler grpc.UnaryHandler) (any, error) {
		ctx, err := a.authorize(ctx, info.FullMethod, scopes)
		if err != nil {
			return nil, err
		}
		return handler(ctx, req)
	}
}

// StreamInterceptor authenticates each streaming call and checks its scope.
func (a *Authenticator) StreamInterceptor(scopes ScopeFunc) grpc.StreamServerInterceptor {
	return func(srv any, ss grpc.ServerStream, info *grpc.StreamServerInfo, handler grpc.StreamHandler) error {
		ctx, err := a.authorize(ss.Context(), info.FullMethod, scopes)
		if err != nil {
			return err
		}
		return handler(srv, &identityStream{ServerStream: ss, ctx: ctx})
	}
}

type identityStream struct {
	grpc.ServerStream
	ctx context.Context
}

func (s *identityStream) Context() context.Context { return s.ctx }
