package jobs

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"regexp"
	"slices"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/equality"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// Limits of a submission.
const (
	// MaxCredentialBytes bounds a delegated credential.
	MaxCredentialBytes = 64 << 10
	// MaxInputBytes bounds all uploaded inputs of one job together (they live in a ConfigMap).
	MaxInputBytes = 768 << 10
	// NamePrefix starts every GridJob name the gateway makes (and every job id after the namespace).
	NamePrefix = "gj-"
)

var clientKeyPattern = regexp.MustCompile(`^[-_.:a-zA-Z0-9]{1,128}$`)

// Name is the GridJob name of an owner's submission with a client key: the same inputs always give the same
// name, which is what makes Submit idempotent across retries, restarts and gateway replicas.
func Name(owner kubehtcv1alpha1.GridJobOwner, clientKey string) string {
	h := sha256.Sum256([]byte(translate.OwnerKey(owner) + "\x00" + clientKey))
	return NamePrefix + hex.EncodeToString(h[:16])
}

// ID is the API identifier of a GridJob, the same through both front doors: namespace.name.
func ID(gj *kubehtcv1alpha1.GridJob) string { return gj.Namespace + "." + gj.Name }

// Service creates, reads, lists, cancels and cleans GridJobs on behalf of authenticated callers. The API
// server is its only store, so any number of gateway replicas may run it.
type Service struct {
	// Client talks to the API server directly (no cache: the API server is the store). It must speak JSON.
	Client client.WithWatch
	// Site is the site configuration.
	Site *config.Site
}

// Credential is a credential sent with a submission; Submit stores it in a Secret the GridJob owns.
type Credential struct {
	Type kubehtcv1alpha1.CredentialType
	Data []byte
}

// Submission is one job to create.
type Submission struct {
	// ClientKey makes the submission idempotent: the same owner and key always name the same GridJob.
	ClientKey string
	// Description is the job as the client described it (translated by Submit).
	Description translate.Description
	// Credential, if set, is stored in a Secret owned by the GridJob (inline credentials).
	Credential *Credential
	// CredentialSecret, if set, names an existing Secret of the VO namespace holding the credential under
	// translate.CredentialKey (a delegation), of type CredentialType.
	CredentialSecret string
	// CredentialType is the type of CredentialSecret.
	CredentialType kubehtcv1alpha1.CredentialType
	// NoCredentialHint ends the error of a job whose runtime environments mount a credential but that has
	// none; empty means "none was given".
	NoCredentialHint string
	// Labels and Annotations are added to the GridJob (a front door's own markers).
	Labels, Annotations map[string]string
	// BeforeCreate, if set, runs once the GridJob is built and before it is created (a front door's
	// records that must exist whenever the job does); an error stops the submission.
	BeforeCreate func(*kubehtcv1alpha1.GridJob) error
}

// Submit creates the GridJob of a submission, or returns the existing one when the same owner submitted
// the same description with the same client key before. created tells which.
func (s *Service) Submit(ctx context.Context, id *auth.Identity, sub Submission) (gj *kubehtcv1alpha1.GridJob, created bool, err error) {
	if !clientKeyPattern.MatchString(sub.ClientKey) {
		return nil, false, errorf(ErrInvalid, "client_key %.40q: 1 to 128 letters, digits, '-', '_', '.', ':'", sub.ClientKey)
	}
	desc, err := translate.Translate(s.Site, id.VO.Name, sub.Description)
	if err != nil {
		if errors.Is(err, ErrForbidden) {
			return nil, false, err
		}
		return nil, false, &Error{Kind: ErrInvalid, Msg: err.Error(), Err: err}
	}
	credType, credSecret := sub.CredentialType, sub.CredentialSecret
	if sub.Credential != nil {
		if err := checkCredential(sub.Credential); err != nil {
			return nil, false, err
		}
		credType = sub.Credential.Type
	}
	if desc.MountCredential && credType == "" {
		hint := sub.NoCredentialHint
		if hint == "" {
			hint = "none was given"
		}
		return nil, false, errorf(ErrInvalid, "runtime environments %v mount a credential, but %s", desc.RuntimeEnvironments, hint)
	}
	queue := sub.Description.Queue
	gj = &kubehtcv1alpha1.GridJob{
		ObjectMeta: metav1.ObjectMeta{
			Name:      Name(id.Owner, sub.ClientKey),
			Namespace: id.VO.Namespace,
			Labels:    map[string]string{kubehtcv1alpha1.OwnerLabel: translate.OwnerLabelValue(id.Owner), kubehtcv1alpha1.SiteQueueLabel: queue},
		},
		Spec: kubehtcv1alpha1.GridJobSpec{
			Owner: id.Owner, VO: id.VO.Name, Queue: queue, ClientKey: sub.ClientKey,
			Description: desc, CredentialType: credType, CredentialSecretName: credSecret,
		},
	}
	for k, v := range sub.Labels {
		gj.Labels[k] = v
	}
	if len(sub.Annotations) > 0 {
		gj.Annotations = make(map[string]string, len(sub.Annotations))
		for k, v := range sub.Annotations {
			gj.Annotations[k] = v
		}
	}
	if sub.Credential != nil {
		gj.Spec.CredentialSecretName = translate.CredentialSecretName(gj.Name)
	}
	if sub.BeforeCreate != nil {
		if err := sub.BeforeCreate(gj); err != nil {
			return nil, false, err
		}
	}
	logger := klog.FromContext(ctx).WithValues("gridjob", klog.KObj(gj), "vo", id.VO.Name, "clientKey", sub.ClientKey)
	err = s.Client.Create(ctx, gj)
	switch {
	case apierrors.IsAlreadyExists(err):
		// A retry (or a key reuse): the stored job answers, provided it is the same submission.
		want := gj.Spec
		if err := s.Client.Get(ctx, client.ObjectKeyFromObject(gj), gj); err != nil {
			return nil, false, apiError(err)
		}
		if gj.Spec.Owner != want.Owner || gj.Spec.ClientKey != want.ClientKey {
			return nil, false, errorf(ErrInternal, "job %s belongs to another submission", gj.Name)
		}
		if !equality.Semantic.DeepEqual(gj.Spec.Description, want.Description) || gj.Spec.Queue != want.Queue || gj.Spec.CredentialType != want.CredentialType {
			return nil, false, errorf(ErrConflict, "client_key %q was already used for a different job description", sub.ClientKey)
		}
		logger.V(2).Info("Submit retried: returning the existing job")
	case apierrors.IsNotFound(err):
		return nil, false, errorf(ErrFailedPrecondition, "namespace %q of VO %s does not exist", id.VO.Namespace, id.VO.Name)
	case err != nil:
		return nil, false, apiError(err)
	default:
		created = true
		logger.V(1).Info("Accepted grid job", "queue", gj.Spec.Queue, "owner", translate.OwnerKey(id.Owner), "inputs", len(desc.Inputs))
	}
	if sub.Credential != nil {
		if err := s.ensureCredential(ctx, gj, sub.Credential.Data); err != nil {
			return nil, false, err
		}
	}
	return gj, created, nil
}

// checkCredential checks an inline credential's size and, for a proxy, its form.
func checkCredential(c *Credential) error {
	if len(c.Data) == 0 {
		return errorf(ErrInvalid, "credential data is empty")
	}
	if len(c.Data) > MaxCredentialBytes {
		return errorf(ErrInvalid, "credential is %d bytes, at most %d", len(c.Data), MaxCredentialBytes)
	}
	if c.Type == kubehtcv1alpha1.CredentialX509Proxy && !strings.Contains(string(c.Data), "-----BEGIN CERTIFICATE-----") {
		return errorf(ErrInvalid, "X.509 proxy credential is not PEM")
	}
	return nil
}

// ensureCredential creates the job's credential Secret, owned by the GridJob (deleted with it).
func (s *Service) ensureCredential(ctx context.Context, gj *kubehtcv1alpha1.GridJob, data []byte) error {
	sec := &corev1.Secret{
		ObjectMeta: metav1.ObjectMeta{
			Name: gj.Spec.CredentialSecretName, Namespace: gj.Namespace,
			Labels:          map[string]string{kubehtcv1alpha1.GridJobLabel: gj.Name},
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

// ParseID splits a job id into namespace and name; ErrInvalid when it is not one the gateway made.
func ParseID(jobID string) (types.NamespacedName, error) {
	ns, name, ok := strings.Cut(jobID, ".")
	if !ok || ns == "" || !strings.HasPrefix(name, NamePrefix) || len(jobID) > 253 {
		return types.NamespacedName{}, errorf(ErrInvalid, "malformed job id %.80q", jobID)
	}
	return types.NamespacedName{Namespace: ns, Name: name}, nil
}

// Get returns a job of the caller. Another VO's or owner's job is ErrForbidden, a missing one ErrNotFound,
// a malformed id ErrInvalid.
func (s *Service) Get(ctx context.Context, id *auth.Identity, jobID string) (*kubehtcv1alpha1.GridJob, error) {
	key, err := ParseID(jobID)
	if err != nil {
		return nil, err
	}
	if key.Namespace != id.VO.Namespace {
		return nil, errorf(ErrForbidden, "job %s belongs to another VO", jobID)
	}
	var gj kubehtcv1alpha1.GridJob
	if err := s.Client.Get(ctx, key, &gj); err != nil {
		if apierrors.IsNotFound(err) {
			return nil, errorf(ErrNotFound, "job %s not found", jobID)
		}
		return nil, apiError(err)
	}
	if gj.Spec.Owner != id.Owner {
		return nil, errorf(ErrForbidden, "job %s belongs to another owner", jobID)
	}
	return &gj, nil
}

// ListOptions select the caller's jobs (its VO namespace, its owner label); List and watches use them.
func ListOptions(id *auth.Identity) []client.ListOption {
	return []client.ListOption{client.InNamespace(id.VO.Namespace),
		client.MatchingLabels{kubehtcv1alpha1.OwnerLabel: translate.OwnerLabelValue(id.Owner)}}
}

// List returns the caller's jobs (owner-checked beyond the label, which is a hash).
func (s *Service) List(ctx context.Context, id *auth.Identity) ([]kubehtcv1alpha1.GridJob, error) {
	var list kubehtcv1alpha1.GridJobList
	if err := s.Client.List(ctx, &list, ListOptions(id)...); err != nil {
		return nil, apiError(err)
	}
	return slices.DeleteFunc(list.Items, func(gj kubehtcv1alpha1.GridJob) bool { return gj.Spec.Owner != id.Owner }), nil
}

// Cancel asks the controller to stop a job (spec.cancel); a job already cancelled or ended is left as it
// is. gj is updated.
func (s *Service) Cancel(ctx context.Context, gj *kubehtcv1alpha1.GridJob) error {
	if gj.Spec.Cancel || gj.Status.State.Terminal() {
		return nil
	}
	patch := client.MergeFrom(gj.DeepCopy())
	gj.Spec.Cancel = true
	if err := s.Client.Patch(ctx, gj, patch); err != nil {
		return apiError(err)
	}
	klog.FromContext(ctx).V(1).Info("Cancel requested", "gridjob", klog.KObj(gj))
	return nil
}

// Clean deletes a job's GridJob, and with it its Pod, Secret and ConfigMap; a job already gone is no
// error. It does not check the job's state: each front door has its rule (gRPC: ended; ARC: ended or
// cancelled).
func (s *Service) Clean(ctx context.Context, gj *kubehtcv1alpha1.GridJob) error {
	if err := s.Client.Delete(ctx, gj, client.PropagationPolicy(metav1.DeletePropagationBackground)); client.IgnoreNotFound(err) != nil {
		return apiError(err)
	}
	klog.FromContext(ctx).V(1).Info("Cleaned grid job", "gridjob", klog.KObj(gj))
	return nil
}

// PutInput stores one declared input of a job that has not started, in the job's inputs ConfigMap (owned
// by the GridJob). All inputs of a job together stay within MaxInputBytes.
func (s *Service) PutInput(ctx context.Context, gj *kubehtcv1alpha1.GridJob, name string, data []byte) error {
	jobID := ID(gj)
	if !slices.Contains(gj.Spec.Description.Inputs, name) {
		return errorf(ErrInvalid, "%.80q is not an input of job %s (inputs: %v)", name, jobID, gj.Spec.Description.Inputs)
	}
	if gj.Status.State != "" && gj.Status.State != kubehtcv1alpha1.StateAccepting {
		return errorf(ErrFailedPrecondition, "job %s is %s: inputs can no longer change", jobID, gj.Status.State)
	}
	if len(data) > MaxInputBytes {
		return errorf(ErrInvalid, "input is %d bytes, at most %d", len(data), MaxInputBytes)
	}
	key := types.NamespacedName{Namespace: gj.Namespace, Name: translate.InputsConfigMapName(gj.Name)}
	var cm corev1.ConfigMap
	err := s.Client.Get(ctx, key, &cm)
	switch {
	case apierrors.IsNotFound(err):
		cm = corev1.ConfigMap{
			ObjectMeta: metav1.ObjectMeta{Name: key.Name, Namespace: key.Namespace, Labels: map[string]string{kubehtcv1alpha1.GridJobLabel: gj.Name},
				OwnerReferences: []metav1.OwnerReference{*metav1.NewControllerRef(gj, kubehtcv1alpha1.GroupVersion.WithKind("GridJob"))}},
			BinaryData: map[string][]byte{name: data},
		}
		err = s.Client.Create(ctx, &cm)
	case err == nil:
		total := len(data)
		for k, v := range cm.BinaryData {
			if k != name {
				total += len(v)
			}
		}
		if total > MaxInputBytes {
			return errorf(ErrInvalid, "inputs would total %d bytes, at most %d", total, MaxInputBytes)
		}
		var patch []byte
		patch, err = json.Marshal(map[string]any{"binaryData": map[string][]byte{name: data}})
		if err == nil {
			err = s.Client.Patch(ctx, &cm, client.RawPatch(types.MergePatchType, patch))
		}
	}
	return apiError(err)
}
