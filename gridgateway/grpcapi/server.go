// Package grpcapi is the grid gateway's gRPC front door (gridgateway/api/v1): it authenticates a call
// (auth), turns the request into a call of the gateway core (gridgateway/jobs for GridJobs,
// gridgateway/session for outputs) and maps the core's errors to gRPC status codes in one place
// (statusOf). What a request does lives in the core, shared with the ARC REST door (gridgateway/arcrest).
package grpcapi

import (
	"context"
	"errors"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
	"github.com/kubehtc/kubehtc/gridgateway/session"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// Limits of the API.
const (
	// MaxCredentialBytes bounds a delegated credential.
	MaxCredentialBytes = jobs.MaxCredentialBytes
	// MaxInputBytes bounds all uploaded inputs of one job together (they live in a ConfigMap).
	MaxInputBytes = jobs.MaxInputBytes
)

// Server implements gatewayv1.GatewayServer.
type Server struct {
	gatewayv1.UnimplementedGatewayServer
	// Client talks to the API server directly (no cache: the API server is the store). It must speak JSON.
	Client client.WithWatch
	// Site is the site configuration.
	Site *config.Site
	// Outputs reads the jobs' session directories (ListOutputs, GetOutput); nil answers
	// FailedPrecondition.
	Outputs session.Outputs
	// MaxOutputBytes is the largest file GetOutput sends; 0 means DefaultMaxOutputBytes.
	MaxOutputBytes int64
}

// jobs is the gateway core over the server's client.
func (s *Server) jobs() *jobs.Service { return &jobs.Service{Client: s.Client, Site: s.Site} }

// methodScopes are the WLCG scopes each method needs (../shared/reference/arc-rest.md §4).
var methodScopes = map[string]string{
	gatewayv1.Gateway_Submit_FullMethodName:      auth.ScopeCreate,
	gatewayv1.Gateway_Get_FullMethodName:         auth.ScopeRead,
	gatewayv1.Gateway_List_FullMethodName:        auth.ScopeRead,
	gatewayv1.Gateway_Watch_FullMethodName:       auth.ScopeRead,
	gatewayv1.Gateway_Cancel_FullMethodName:      auth.ScopeCancel,
	gatewayv1.Gateway_Clean_FullMethodName:       auth.ScopeCancel,
	gatewayv1.Gateway_UploadInput_FullMethodName: auth.ScopeModify,
	gatewayv1.Gateway_ListOutputs_FullMethodName: auth.ScopeRead,
	gatewayv1.Gateway_GetOutput_FullMethodName:   auth.ScopeRead,
}

// Scopes tells the authentication interceptors which scope a method needs; health checks need none.
func Scopes(fullMethod string) (string, bool) {
	if s, ok := methodScopes[fullMethod]; ok {
		return s, true
	}
	return "", strings.HasPrefix(fullMethod, "/grpc.health.v1.Health/")
}

func identity(ctx context.Context) (*auth.Identity, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "unauthenticated call")
	}
	return id, nil
}

// statusOf maps an error of the gateway core (or of the API server) to a gRPC status: the one place where
// errors become codes.
func statusOf(err error) error {
	if err == nil {
		return nil
	}
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	code := codes.Unavailable
	switch {
	case errors.Is(err, jobs.ErrInvalid):
		code = codes.InvalidArgument
	case errors.Is(err, jobs.ErrForbidden):
		code = codes.PermissionDenied
	case errors.Is(err, jobs.ErrNotFound):
		code = codes.NotFound
	case errors.Is(err, jobs.ErrConflict):
		code = codes.AlreadyExists
	case errors.Is(err, jobs.ErrConcurrentUpdate):
		code = codes.Aborted
	case errors.Is(err, jobs.ErrFailedPrecondition):
		code = codes.FailedPrecondition
	case errors.Is(err, jobs.ErrInternal):
		code = codes.Internal
	case errors.Is(err, context.Canceled):
		code = codes.Canceled
	case errors.Is(err, context.DeadlineExceeded):
		code = codes.DeadlineExceeded
	case errors.Is(err, jobs.ErrUnavailable):
	default:
		return status.Errorf(codes.Unavailable, "kubernetes API: %v", err)
	}
	return status.Error(code, err.Error())
}

// Submit implements gatewayv1.GatewayServer.
func (s *Server) Submit(ctx context.Context, req *gatewayv1.SubmitRequest) (*gatewayv1.Job, error) {
	id, err := identity(ctx)
	if err != nil {
		return nil, err
	}
	if req.GetDescription() == nil {
		return nil, status.Error(codes.InvalidArgument, "description is required")
	}
	cred, err := credential(req.GetCredential())
	if err != nil {
		return nil, err
	}
	gj, _, err := s.jobs().Submit(ctx, id, jobs.Submission{ClientKey: req.GetClientKey(), Description: fromProto(req.GetDescription()), Credential: cred})
	if err != nil {
		return nil, statusOf(err)
	}
	return toProto(gj), nil
}

// credential turns a request's credential into the core's; nil for none.
func credential(c *gatewayv1.Credential) (*jobs.Credential, error) {
	if c == nil || (c.GetType() == gatewayv1.Credential_TYPE_UNSPECIFIED && len(c.GetData()) == 0) {
		return nil, nil
	}
	switch c.GetType() {
	case gatewayv1.Credential_X509_PROXY:
		return &jobs.Credential{Type: kubehtcv1alpha1.CredentialX509Proxy, Data: c.GetData()}, nil
	case gatewayv1.Credential_BEARER_TOKEN:
		return &jobs.Credential{Type: kubehtcv1alpha1.CredentialBearerToken, Data: c.GetData()}, nil
	default:
		return nil, status.Errorf(codes.InvalidArgument, "credential type %v is not supported", c.GetType())
	}
}

// job fetches a GridJob the caller owns.
func (s *Server) job(ctx context.Context, jobID string) (*auth.Identity, *kubehtcv1alpha1.GridJob, error) {
	id, err := identity(ctx)
	if err != nil {
		return nil, nil, err
	}
	gj, err := s.jobs().Get(ctx, id, jobID)
	if err != nil {
		return nil, nil, statusOf(err)
	}
	return id, gj, nil
}

// Get implements gatewayv1.GatewayServer.
func (s *Server) Get(ctx context.Context, req *gatewayv1.GetRequest) (*gatewayv1.Job, error) {
	_, gj, err := s.job(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	return toProto(gj), nil
}

// List implements gatewayv1.GatewayServer.
func (s *Server) List(ctx context.Context, req *gatewayv1.ListRequest) (*gatewayv1.ListResponse, error) {
	id, err := identity(ctx)
	if err != nil {
		return nil, err
	}
	list, err := s.jobs().List(ctx, id)
	if err != nil {
		return nil, statusOf(err)
	}
	out := &gatewayv1.ListResponse{}
	for i := range list {
		gj := &list[i]
		if len(req.GetStates()) > 0 && !slices.Contains(req.GetStates(), string(gj.Status.State)) {
			continue
		}
		out.Jobs = append(out.Jobs, toProto(gj))
	}
	return out, nil
}

// Cancel implements gatewayv1.GatewayServer.
func (s *Server) Cancel(ctx context.Context, req *gatewayv1.CancelRequest) (*gatewayv1.Job, error) {
	_, gj, err := s.job(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if err := s.jobs().Cancel(ctx, gj); err != nil {
		return nil, statusOf(err)
	}
	return toProto(gj), nil
}

// Clean implements gatewayv1.GatewayServer: only an ended job may be cleaned.
func (s *Server) Clean(ctx context.Context, req *gatewayv1.CleanRequest) (*gatewayv1.CleanResponse, error) {
	_, gj, err := s.job(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if !gj.Status.State.Terminal() {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s is %s: cancel it or wait until it ends", req.GetId(), gj.Status.State)
	}
	if err := s.jobs().Clean(ctx, gj); err != nil {
		return nil, statusOf(err)
	}
	return &gatewayv1.CleanResponse{}, nil
}

// UploadInput implements gatewayv1.GatewayServer.
func (s *Server) UploadInput(ctx context.Context, req *gatewayv1.UploadInputRequest) (*gatewayv1.Job, error) {
	_, gj, err := s.job(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if err := s.jobs().PutInput(ctx, gj, req.GetName(), req.GetData()); err != nil {
		return nil, statusOf(err)
	}
	return toProto(gj), nil
}

func fromProto(d *gatewayv1.JobDescription) translate.Description {
	return translate.Description{
		Name: d.GetName(), Queue: d.GetQueue(), Cores: d.GetCores(), MemoryMiB: d.GetMemoryMib(), WallTimeSeconds: d.GetWallTimeSeconds(),
		DiskMiB: d.GetDiskMib(), GPUs: d.GetGpus(), Image: d.GetImage(), Executable: d.GetExecutable(), Arguments: d.GetArguments(),
		Environment: d.GetEnvironment(), RuntimeEnvironments: d.GetRuntimeEnvironments(), Inputs: d.GetInputs(), Outputs: d.GetOutputs(),
	}
}

func toProto(gj *kubehtcv1alpha1.GridJob) *gatewayv1.Job {
	state := gj.Status.State
	if state == "" {
		state = kubehtcv1alpha1.StateAccepting
	}
	j := &gatewayv1.Job{
		Id: jobs.ID(gj), ClientKey: gj.Spec.ClientKey, Vo: gj.Spec.VO, Queue: gj.Spec.Queue, State: string(state),
		PodName: gj.Status.PodName, Node: gj.Status.Node, ExitCode: gj.Status.ExitCode, FailureReason: gj.Status.FailureReason,
		Message: gj.Status.Message, Outputs: gj.Spec.Description.Outputs,
	}
	if gj.Status.SubmitTime != nil {
		j.SubmitTime = timestamppb.New(gj.Status.SubmitTime.Time)
	} else {
		j.SubmitTime = timestamppb.New(gj.CreationTimestamp.Time)
	}
	if gj.Status.StartTime != nil {
		j.StartTime = timestamppb.New(gj.Status.StartTime.Time)
	}
	if gj.Status.EndTime != nil {
		j.EndTime = timestamppb.New(gj.Status.EndTime.Time)
	}
	return j
}
