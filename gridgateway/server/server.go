// Package server implements the grid gateway's gRPC API (gridgateway/api/v1) over the Kubernetes API:
// every job is a GridJob, and the API server is the only store, so a restarted or second gateway replica
// loses and duplicates nothing. Submit is idempotent because a job's object name is derived from its
// owner and client key: the API server refuses a second object of that name.
package server

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/timestamppb"
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// Limits of the API.
const (
	// MaxCredentialBytes bounds a delegated credential.
	MaxCredentialBytes = 64 << 10
	// MaxInputBytes bounds all uploaded inputs of one job together (they live in a ConfigMap).
	MaxInputBytes = 768 << 10
	// jobNamePrefix starts every GridJob name the gateway makes (and every job id after the namespace).
	jobNamePrefix = "gj-"
)

var clientKeyPattern = regexp.MustCompile(`^[-_.:a-zA-Z0-9]{1,128}$`)

// Server implements gatewayv1.GatewayServer.
type Server struct {
	gatewayv1.UnimplementedGatewayServer
	// Client talks to the API server directly (no cache: the API server is the store). It must speak JSON.
	Client client.WithWatch
	// Site is the site configuration.
	Site *config.Site
	// Outputs reads the jobs' session directories (ListOutputs, GetOutput); nil answers
	// FailedPrecondition.
	Outputs OutputStore
	// MaxOutputBytes is the largest file GetOutput sends; 0 means DefaultMaxOutputBytes.
	MaxOutputBytes int64
}

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

// JobName is the GridJob name of an owner's submission with a client key: the same inputs always give the
// same name, which is what makes Submit idempotent across retries and restarts.
func JobName(owner kubehtcv1alpha1.GridJobOwner, clientKey string) string {
	h := sha256.Sum256([]byte(translate.OwnerKey(owner) + "\x00" + clientKey))
	return jobNamePrefix + hex.EncodeToString(h[:16])
}

// JobID is the API identifier of a GridJob: namespace.name.
func JobID(gj *kubehtcv1alpha1.GridJob) string { return gj.Namespace + "." + gj.Name }

func identity(ctx context.Context) (*auth.Identity, error) {
	id, ok := auth.FromContext(ctx)
	if !ok {
		return nil, status.Error(codes.Unauthenticated, "unauthenticated call")
	}
	return id, nil
}

// Submit implements gatewayv1.GatewayServer.
func (s *Server) Submit(ctx context.Context, req *gatewayv1.SubmitRequest) (*gatewayv1.Job, error) {
	id, err := identity(ctx)
	if err != nil {
		return nil, err
	}
	if !clientKeyPattern.MatchString(req.GetClientKey()) {
		return nil, status.Errorf(codes.InvalidArgument, "client_key %.40q: 1 to 128 letters, digits, '-', '_', '.', ':'", req.GetClientKey())
	}
	if req.GetDescription() == nil {
		return nil, status.Error(codes.InvalidArgument, "description is required")
	}
	desc, err := translate.Translate(s.Site, id.VO.Name, fromProto(req.GetDescription()))
	switch {
	case errors.Is(err, translate.ErrForbidden):
		return nil, status.Error(codes.PermissionDenied, err.Error())
	case err != nil:
		return nil, status.Error(codes.InvalidArgument, err.Error())
	}
	credType, err := credentialType(req.GetCredential())
	if err != nil {
		return nil, err
	}
	if desc.MountCredential && credType == "" {
		return nil, status.Errorf(codes.InvalidArgument, "runtime environments %v mount a credential, but none was given", desc.RuntimeEnvironments)
	}
	gj := &kubehtcv1alpha1.GridJob{
		ObjectMeta: metav1.ObjectMeta{
			Name:      JobName(id.Owner, req.GetClientKey()),
			Namespace: id.VO.Namespace,
			Labels:    map[string]string{translate.OwnerLabel: translate.OwnerLabelValue(id.Owner), translate.QueueLabel: req.GetDescription().GetQueue()},
		},
		Spec: kubehtcv1alpha1.GridJobSpec{
			Owner: id.Owner, VO: id.VO.Name, Queue: req.GetDescription().GetQueue(), ClientKey: req.GetClientKey(),
			Description: desc, CredentialType: credType,
		},
	}
	if credType != "" {
		gj.Spec.CredentialSecretName = translate.CredentialSecretName(gj.Name)
	}
	logger := klog.FromContext(ctx).WithValues("gridjob", klog.KObj(gj), "vo", id.VO.Name, "clientKey", req.GetClientKey())
	err = s.Client.Create(ctx, gj)
	switch {
	case apierrors.IsAlreadyExists(err):
		// A retry (or a key reuse): the stored job answers, provided it is the same submission.
		want := gj.Spec
		if err := s.Client.Get(ctx, client.ObjectKeyFromObject(gj), gj); err != nil {
			return nil, apiError(err)
		}
		if gj.Spec.Owner != want.Owner || gj.Spec.ClientKey != want.ClientKey {
			return nil, status.Errorf(codes.Internal, "job %s belongs to another submission", gj.Name)
		}
		if !equality.Semantic.DeepEqual(gj.Spec.Description, want.Description) || gj.Spec.Queue != want.Queue || gj.Spec.CredentialType != want.CredentialType {
			return nil, status.Errorf(codes.AlreadyExists, "client_key %q was already used for a different job description", req.GetClientKey())
		}
		logger.V(2).Info("Submit retried: returning the existing job")
	case apierrors.IsNotFound(err):
		return nil, status.Errorf(codes.FailedPrecondition, "namespace %q of VO %s does not exist", id.VO.Namespace, id.VO.Name)
	case err != nil:
		return nil, apiError(err)
	default:
		logger.V(1).Info("Accepted grid job", "queue", gj.Spec.Queue, "owner", translate.OwnerKey(id.Owner))
	}
	if credType != "" {
		if err := s.ensureCredential(ctx, gj, req.GetCredential().GetData()); err != nil {
			return nil, err
		}
	}
	return toProto(gj), nil
}

func credentialType(c *gatewayv1.Credential) (kubehtcv1alpha1.CredentialType, error) {
	if c == nil || (c.GetType() == gatewayv1.Credential_TYPE_UNSPECIFIED && len(c.GetData()) == 0) {
		return "", nil
	}
	if len(c.GetData()) == 0 {
		return "", status.Error(codes.InvalidArgument, "credential data is empty")
	}
	if len(c.GetData()) > MaxCredentialBytes {
		return "", status.Errorf(codes.InvalidArgument, "credential is %d bytes, at most %d", len(c.GetData()), MaxCredentialBytes)
	}
	switch c.GetType() {
	case gatewayv1.Credential_X509_PROXY:
		if !strings.Contains(string(c.GetData()), "-----BEGIN CERTIFICATE-----") {
			return "", status.Error(codes.InvalidArgument, "X.509 proxy credential is not PEM")
		}
		return kubehtcv1alpha1.CredentialX509Proxy, nil
	case gatewayv1.Credential_BEARER_TOKEN:
		return kubehtcv1alpha1.CredentialBearerToken, nil
	default:
		return "", status.Errorf(codes.InvalidArgument, "credential type %v is not supported", c.GetType())
	}
}

// ensureCredential creates the job's credential Secret, owned by the GridJob (deleted with it).
func (s *Server) ensureCredential(ctx context.Context, gj *kubehtcv1alpha1.GridJob, data []byte) error {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: gj.Spec.CredentialSecretName, Namespace: gj.Namespace,
			Labels:          map[string]string{translate.GridJobLabel: gj.Name},
			OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(gj, kubehtcv1alpha1.GroupVersion.WithKind("GridJob"))},
		},
		Type: corev1.SecretTypeOpaque,
		Data: map[string][]byte{translate.CredentialKey: data},
	}
	if err := s.Client.Create(ctx, sec); err != nil && !apierrors.IsAlreadyExists(err) {
		return apiError(err)
	}
	return nil
}

// job fetches a GridJob the caller owns.
func (s *Server) job(ctx context.Context, jobID string) (*auth.Identity, *kubehtcv1alpha1.GridJob, error) {
	id, err := identity(ctx)
	if err != nil {
		return nil, nil, err
	}
	ns, name, ok := strings.Cut(jobID, ".")
	if !ok || ns == "" || !strings.HasPrefix(name, jobNamePrefix) || len(jobID) > 253 {
		return nil, nil, status.Errorf(codes.InvalidArgument, "malformed job id %.80q", jobID)
	}
	if ns != id.VO.Namespace {
		return nil, nil, status.Errorf(codes.PermissionDenied, "job %s belongs to another VO", jobID)
	}
	var gj kubehtcv1alpha1.GridJob
	if err := s.Client.Get(ctx, types.NamespacedName{Namespace: ns, Name: name}, &gj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, nil, status.Errorf(codes.NotFound, "job %s not found", jobID)
		}
		return nil, nil, apiError(err)
	}
	if gj.Spec.Owner != id.Owner {
		return nil, nil, status.Errorf(codes.PermissionDenied, "job %s belongs to another owner", jobID)
	}
	return id, &gj, nil
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
	var list kubehtcv1alpha1.GridJobList
	if err := s.Client.List(ctx, &list, client.InNamespace(id.VO.Namespace), client.MatchingLabels{translate.OwnerLabel: translate.OwnerLabelValue(id.Owner)}); err != nil {
		return nil, apiError(err)
	}
	out := &gatewayv1.ListResponse{}
	for i := range list.Items {
		gj := &list.Items[i]
		if gj.Spec.Owner != id.Owner || (len(req.GetStates()) > 0 && !slices.Contains(req.GetStates(), string(gj.Status.State))) {
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
	if gj.Spec.Cancel || gj.Status.State.Terminal() {
		return toProto(gj), nil
	}
	patch := client.MergeFrom(gj.DeepCopy())
	gj.Spec.Cancel = true
	if err := s.Client.Patch(ctx, gj, patch); err != nil {
		return nil, apiError(err)
	}
	klog.FromContext(ctx).V(1).Info("Cancel requested", "gridjob", klog.KObj(gj))
	return toProto(gj), nil
}

// Clean implements gatewayv1.GatewayServer.
func (s *Server) Clean(ctx context.Context, req *gatewayv1.CleanRequest) (*gatewayv1.CleanResponse, error) {
	_, gj, err := s.job(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if !gj.Status.State.Terminal() {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s is %s: cancel it or wait until it ends", req.GetId(), gj.Status.State)
	}
	if err := s.Client.Delete(ctx, gj, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return nil, apiError(err)
	}
	return &gatewayv1.CleanResponse{}, nil
}

// UploadInput implements gatewayv1.GatewayServer.
func (s *Server) UploadInput(ctx context.Context, req *gatewayv1.UploadInputRequest) (*gatewayv1.Job, error) {
	_, gj, err := s.job(ctx, req.GetId())
	if err != nil {
		return nil, err
	}
	if !slices.Contains(gj.Spec.Description.Inputs, req.GetName()) {
		return nil, status.Errorf(codes.InvalidArgument, "%.80q is not an input of job %s (inputs: %v)", req.GetName(), req.GetId(), gj.Spec.Description.Inputs)
	}
	if gj.Status.State != "" && gj.Status.State != kubehtcv1alpha1.StateAccepting {
		return nil, status.Errorf(codes.FailedPrecondition, "job %s is %s: inputs can no longer change", req.GetId(), gj.Status.State)
	}
	if len(req.GetData()) > MaxInputBytes {
		return nil, status.Errorf(codes.InvalidArgument, "input is %d bytes, at most %d", len(req.GetData()), MaxInputBytes)
	}
	key := types.NamespacedName{Namespace: gj.Namespace, Name: translate.InputsConfigMapName(gj.Name)}
	var cm corev1.ConfigMap
	err = s.Client.Get(ctx, key, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: map[string]string{translate.GridJobLabel: gj.Name},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(gj, kubehtcv1alpha1.GroupVersion.WithKind("GridJob"))}},
			BinaryData: map[string][]byte{req.GetName(): req.GetData()},
		}
		err = s.Client.Create(ctx, &cm)
	case err == nil:
		total := len(req.GetData())
		for k, v := range cm.BinaryData {
			if k != req.GetName() {
				total += len(v)
			}
		}
		if total > MaxInputBytes {
			return nil, status.Errorf(codes.InvalidArgument, "inputs would total %d bytes, at most %d", total, MaxInputBytes)
		}
		var patch []byte
		patch, err = json.Marshal(map[string]any{"binaryData": map[string][]byte{req.GetName(): req.GetData()}})
		if err == nil {
			err = s.Client.Patch(ctx, &cm, client.RawPatch(types.MergePatchType, patch))
		}
	}
	if err != nil {
		return nil, apiError(err)
	}
	return toProto(gj), nil
}

// apiError maps an API server error to a gRPC status; errors a retry may cure are Unavailable.
func apiError(err error) error {
	if _, ok := status.FromError(err); ok && status.Code(err) != codes.Unknown {
		return err
	}
	switch {
	case apierrors.IsNotFound(err):
		return status.Error(codes.NotFound, err.Error())
	case apierrors.IsConflict(err):
		return status.Error(codes.Aborted, err.Error())
	case apierrors.IsInvalid(err), apierrors.IsBadRequest(err):
		return status.Error(codes.InvalidArgument, err.Error())
	case apierrors.IsForbidden(err):
		return status.Error(codes.PermissionDenied, err.Error())
	case errors.Is(err, context.Canceled):
		return status.Error(codes.Canceled, err.Error())
	case errors.Is(err, context.DeadlineExceeded):
		return status.Error(codes.DeadlineExceeded, err.Error())
	default:
		return status.Error(codes.Unavailable, fmt.Sprintf("kubernetes API: %v", err))
	}
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
		Id: JobID(gj), ClientKey: gj.Spec.ClientKey, Vo: gj.Spec.VO, Queue: gj.Spec.Queue, State: string(state),
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
