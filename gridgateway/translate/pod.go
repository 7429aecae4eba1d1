package translate

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"maps"
	"strconv"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"k8s.io/utils/ptr"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/csi/inject"
)

// Labels and well-known names of the objects built here.
const (
	// QueueLabel carries the site queue of a GridJob and its Pod (not the fair-share Queue, which comes from
	// the namespace).
	QueueLabel = kubehtcv1alpha1.SiteQueueLabel
	// UserLabel carries the owner of a Pod, derived from the token subject or certificate DN.
	UserLabel = kubehtcv1alpha1.UserLabel
	// ClassLabel is the workload class; grid jobs are batch.
	ClassLabel = kubehtcv1alpha1.ClassLabel
	// GridJobLabel names the GridJob of a Pod, Secret or ConfigMap.
	GridJobLabel = kubehtcv1alpha1.GridJobLabel
	// OwnerLabel is a hash of the owner identity on a GridJob, so that the gateway lists one owner's jobs
	// with a label selector.
	OwnerLabel = kubehtcv1alpha1.OwnerLabel

	// CredentialKey is the key of the credential in its Secret.
	CredentialKey = "credential"
	// ContainerName is the name of the one container of a grid job's Pod.
	ContainerName = "job"
	// SessionDir is the job's writable working directory (an emptyDir, limited to the requested disk).
	SessionDir = "/session"
	// InputsDir holds the uploaded input files (read-only).
	InputsDir = "/session-inputs"
	// CredentialDir holds the mounted credential (read-only).
	CredentialDir = "/etc/grid-security/job"
	// RunAsUser is the unprivileged user the job runs as.
	RunAsUser = 10000
	// DeadlineMargin is added to the wall time to make activeDeadlineSeconds: time to start and stage.
	DeadlineMargin = 60

	// The simulation annotations of the local cluster (internal/localcluster/stages.go). With
	// PodOptions.Simulation, the description's environment variables SimRuntimeEnv and SimExitCodeEnv
	// become these annotations, so that simulated pilots run for a while and end as asked.
	simRuntimeAnnotation  = kubehtcv1alpha1.RuntimeAnnotation
	simExitCodeAnnotation = kubehtcv1alpha1.ExitCodeAnnotation
	// SimRuntimeEnv sets a simulated job's run time (a Go duration).
	SimRuntimeEnv = "KUBEHTC_SIM_RUNTIME"
	// SimExitCodeEnv sets a simulated job's exit code.
	SimExitCodeEnv = "KUBEHTC_SIM_EXIT_CODE"
)

// CVMFSMode is how CVMFS repositories become volumes.
type CVMFSMode string

const (
	// CVMFSEphemeral uses CSI ephemeral inline volumes (csi/inject, the same code as the mount webhook).
	CVMFSEphemeral CVMFSMode = "ephemeral"
	// CVMFSPVC mounts pre-provisioned read-only PVCs, one per repository, named by PodOptions.PVCNameFormat.
	CVMFSPVC CVMFSMode = "pvc"
)

// PodOptions are the site choices that shape every grid job's Pod.
type PodOptions struct {
	// SchedulerName of the Pods; empty means the cluster default.
	SchedulerName string
	// CVMFSMode selects inline CSI volumes or PVCs; empty means CVMFSEphemeral.
	CVMFSMode CVMFSMode
	// CVMFSDriver is the CSI driver of inline volumes; empty means cvmfs.csi.cern.ch.
	CVMFSDriver string
	// PVCNameFormat names the PVC of a repository (one %s); empty means "csi-cvmfs-%s-pvc", as in
	// Harvester's templates. Dots in the repository become dashes.
	PVCNameFormat string
	// Simulation turns the SimRuntimeEnv and SimExitCodeEnv variables into local-cluster annotations.
	Simulation bool
	// SessionClaimName names a PersistentVolumeClaim, in each VO namespace, of the volume that holds the
	// gateway's session store (gridgateway/arcrest.FileStore on a ReadWriteMany volume). Jobs whose inputs
	// are staged in the session store (SessionInputsAnnotation) then mount <namespace>/<name>/session of
	// that volume at /session, so that the job reads its uploaded inputs there and leaves its outputs for
	// the client. Empty: /session is an emptyDir (the local cluster, whose nodes run no containers).
	SessionClaimName string
}

// SessionInputsAnnotation on a GridJob says that its inputs are uploaded to the gateway's session store
// rather than to the inputs ConfigMap (the ARC REST interface), and whether all have arrived: the
// controller creates the Pod only once it is SessionInputsReady.
const (
	SessionInputsAnnotation = kubehtcv1alpha1.SessionInputsAnnotation
	SessionInputsPending    = "pending"
	SessionInputsReady      = "ready"
)

// SessionStaged reports whether a GridJob's inputs live in the session store.
func SessionStaged(gj *kubehtcv1alpha1.GridJob) bool {
	_, ok := gj.Annotations[SessionInputsAnnotation]
	return ok
}

// PodName is the name of a GridJob's Pod (the GridJob's own name: one Pod per GridJob).
func PodName(gj *kubehtcv1alpha1.GridJob) string { return gj.Name }

// CredentialSecretName is the name of a GridJob's credential Secret.
func CredentialSecretName(gridJobName string) string { return gridJobName + "-credential" }

// InputsConfigMapName is the name of the ConfigMap that holds a GridJob's uploaded inputs.
func InputsConfigMapName(gridJobName string) string { return gridJobName + "-inputs" }

// UserLabelValue makes a label value of an owner identity: the subject or DN itself when it is a valid
// label value, otherwise a readable part of it and a hash.
func UserLabelValue(o kubehtcv1alpha1.GridJobOwner) string {
	id := o.Subject
	if o.DN != "" {
		id = o.DN
		if i := strings.LastIndex(id, "CN="); i >= 0 {
			id = id[i+3:]
		}
	}
	if len(validation.IsValidLabelValue(id)) == 0 && id != "" && o.DN == "" {
		return id
	}
	var b strings.Builder
	for _, c := range id {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
			b.WriteRune(c)
		case b.Len() > 0 && !strings.HasSuffix(b.String(), "-"):
			b.WriteByte('-')
		}
	}
	readable := strings.Trim(b.String(), "-")
	if len(readable) > 40 {
		readable = strings.TrimRight(readable[:40], "-")
	}
	h := sha256.Sum256([]byte(OwnerKey(o)))
	if readable == "" {
		return "u-" + hex.EncodeToString(h[:8])
	}
	return readable + "-" + hex.EncodeToString(h[:8])
}

// OwnerKey is a stable string of an owner identity.
func OwnerKey(o kubehtcv1alpha1.GridJobOwner) string {
	if o.DN != "" {
		return "dn:" + o.DN
	}
	return "token:" + o.Issuer + "\x00" + o.Subject
}

// OwnerLabelValue is the value of OwnerLabel for an owner: a hash of OwnerKey.
func OwnerLabelValue(o kubehtcv1alpha1.GridJobOwner) string {
	h := sha256.Sum256([]byte(OwnerKey(o)))
	return hex.EncodeToString(h[:20])
}

// Pod builds the Pod of a GridJob: one container with requests equal to limits, activeDeadlineSeconds from
// the wall time, the credential Secret and inputs mounted read-only, CVMFS repositories, and a security
// context that satisfies the PodSecurity "restricted" profile. The caller sets the owner reference.
func Pod(gj *kubehtcv1alpha1.GridJob, opts PodOptions) (*corev1.Pod, error) {
	d := &gj.Spec.Description
	res := corev1.ResourceList{
		corev1.ResourceCPU:    *resource.NewQuantity(int64(d.Cores), resource.DecimalSI),
		corev1.ResourceMemory: *resource.NewQuantity(d.MemoryMiB<<20, resource.BinarySI),
	}
	if d.DiskMiB > 0 {
		res[corev1.ResourceEphemeralStorage] = *resource.NewQuantity(d.DiskMiB<<20, resource.BinarySI)
	}
	if d.GPUs > 0 {
		res[kubehtcv1alpha1.GPUResource] = *resource.NewQuantity(int64(d.GPUs), resource.DecimalSI)
	}
	session := corev1.Volume{Name: "session", VolumeSource: corev1.VolumeSource{EmptyDir: &corev1.EmptyDirVolumeSource{}}}
	sessionMount := corev1.VolumeMount{Name: "session", MountPath: SessionDir}
	if SessionStaged(gj) && opts.SessionClaimName != "" {
		session.VolumeSource = corev1.VolumeSource{PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{ClaimName: opts.SessionClaimName}}
		sessionMount.SubPath = gj.Namespace + "/" + gj.Name + "/session"
	} else if d.DiskMiB > 0 {
		session.EmptyDir.SizeLimit = resource.NewQuantity(d.DiskMiB<<20, resource.BinarySI)
	}
	c := corev1.Container{
		Name:            ContainerName,
		Image:           d.Image,
		Command:         d.Command,
		Args:            d.Args,
		WorkingDir:      SessionDir,
		Resources:       corev1.ResourceRequirements{Requests: res, Limits: res.DeepCopy()},
		VolumeMounts:    []corev1.VolumeMount{sessionMount},
		SecurityContext: restrictedContainer(),
		Env:             []corev1.EnvVar{{Name: "HOME", Value: SessionDir}, {Name: "TMPDIR", Value: SessionDir}},
	}
	ann := map[string]string{}
	for _, e := range d.Env {
		c.Env = append(c.Env, corev1.EnvVar{Name: e.Name, Value: e.Value})
		if !opts.Simulation {
			continue
		}
		switch e.Name {
		case SimRuntimeEnv:
			ann[simRuntimeAnnotation] = e.Value
		case SimExitCodeEnv:
			if _, err := strconv.Atoi(e.Value); err == nil {
				ann[simExitCodeAnnotation] = e.Value
			}
		}
	}
	labels := maps.Clone(d.PodLabels)
	if labels == nil {
		labels = map[string]string{}
	}
	maps.Copy(labels, map[string]string{
		QueueLabel:   gj.Spec.Queue,
		UserLabel:    UserLabelValue(gj.Spec.Owner),
		ClassLabel:   "batch",
		GridJobLabel: gj.Name,
	})
	pod := &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{
			Name:        PodName(gj),
			Namespace:   gj.Namespace,
			Annotations: ann,
			Labels:      labels,
		},
		Spec: corev1.PodSpec{
			RestartPolicy:                 corev1.RestartPolicyNever,
			ActiveDeadlineSeconds:         ptr.To(d.WallTimeSeconds + DeadlineMargin),
			SchedulerName:                 opts.SchedulerName,
			PriorityClassName:             d.PriorityClassName,
			NodeSelector:                  d.NodeSelector,
			AutomountServiceAccountToken:  ptr.To(false),
			EnableServiceLinks:            ptr.To(false),
			TerminationGracePeriodSeconds: ptr.To[int64](30),
			SecurityContext: &corev1.PodSecurityContext{
				RunAsNonRoot:   ptr.To(true),
				RunAsUser:      ptr.To[int64](RunAsUser),
				RunAsGroup:     ptr.To[int64](RunAsUser),
				FSGroup:        ptr.To[int64](RunAsUser),
				SeccompProfile: &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
			},
			Volumes: []corev1.Volume{session},
		},
	}
	if len(d.Inputs) > 0 && !SessionStaged(gj) {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "inputs", VolumeSource: corev1.VolumeSource{
			ConfigMap: &corev1.ConfigMapVolumeSource{LocalObjectReference: corev1.LocalObjectReference{Name: InputsConfigMapName(gj.Name)}},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "inputs", MountPath: InputsDir, ReadOnly: true})
	}
	if gj.Spec.CredentialSecretName != "" && d.MountCredential {
		pod.Spec.Volumes = append(pod.Spec.Volumes, corev1.Volume{Name: "credential", VolumeSource: corev1.VolumeSource{
			// Only the credential: an ARC delegation Secret also holds the key of a renewal in progress.
			Secret: &corev1.SecretVolumeSource{SecretName: gj.Spec.CredentialSecretName, DefaultMode: ptr.To[int32](0o400),
				Items: []corev1.KeyToPath{{Key: CredentialKey, Path: CredentialKey}}},
		}})
		c.VolumeMounts = append(c.VolumeMounts, corev1.VolumeMount{Name: "credential", MountPath: CredentialDir, ReadOnly: true})
		file := CredentialDir + "/" + CredentialKey
		switch gj.Spec.CredentialType {
		case kubehtcv1alpha1.CredentialBearerToken:
			c.Env = append(c.Env, corev1.EnvVar{Name: "BEARER_TOKEN_FILE", Value: file})
		default:
			c.Env = append(c.Env, corev1.EnvVar{Name: "X509_USER_PROXY", Value: file})
		}
	}
	pod.Spec.Containers = []corev1.Container{c}
	if err := addCVMFS(&pod.Spec, d.CVMFS, opts); err != nil {
		return nil, err
	}
	return pod, nil
}

func restrictedContainer() *corev1.SecurityContext {
	return &corev1.SecurityContext{
		AllowPrivilegeEscalation: ptr.To(false),
		RunAsNonRoot:             ptr.To(true),
		Capabilities:             &corev1.Capabilities{Drop: []corev1.Capability{"ALL"}},
		SeccompProfile:           &corev1.SeccompProfile{Type: corev1.SeccompProfileTypeRuntimeDefault},
	}
}

// addCVMFS mounts the repositories: inline CSI volumes through csi/inject, or read-only PVCs.
func addCVMFS(spec *corev1.PodSpec, repos []kubehtcv1alpha1.CVMFSMount, opts PodOptions) error {
	if len(repos) == 0 {
		return nil
	}
	names := make([]string, len(repos))
	for i, r := range repos {
		names[i] = r.Repository
	}
	switch opts.CVMFSMode {
	case "", CVMFSEphemeral:
		if err := inject.AddMounts(spec, inject.Request{CVMFS: names}, inject.Options{CVMFSDriver: opts.CVMFSDriver}); err != nil {
			return fmt.Errorf("%w: %v", ErrInvalid, err)
		}
	case CVMFSPVC:
		format := opts.PVCNameFormat
		if format == "" {
			format = "csi-cvmfs-%s-pvc"
		}
		for _, repo := range names {
			if err := inject.ValidateRepository(repo); err != nil {
				return fmt.Errorf("%w: %v", ErrInvalid, err)
			}
			vol := inject.VolumeName(inject.TypeCVMFS, repo)
			spec.Volumes = append(spec.Volumes, corev1.Volume{Name: vol, VolumeSource: corev1.VolumeSource{
				PersistentVolumeClaim: &corev1.PersistentVolumeClaimVolumeSource{
					ClaimName: fmt.Sprintf(format, strings.ReplaceAll(repo, ".", "-")), ReadOnly: true,
				},
			}})
			for i := range spec.Containers {
				spec.Containers[i].VolumeMounts = append(spec.Containers[i].VolumeMounts, corev1.VolumeMount{
					Name: vol, MountPath: inject.CVMFSMountRoot + "/" + repo, ReadOnly: true,
					MountPropagation: ptr.To(corev1.MountPropagationHostToContainer),
				})
			}
		}
	default:
		return fmt.Errorf("unknown CVMFS mode %q", opts.CVMFSMode)
	}
	return nil
}
