package v1alpha1

import corev1 "k8s.io/api/core/v1"

// Well-known names: every label, annotation and resource name kubehtc reads or writes, defined once. Other
// packages refer to these constants (a package may re-export one under a local name, never re-spell it).
// One key has one meaning.

// Labels and annotations on Namespaces and Pods that fair share reads.
const (
	// QueueLabel is the Namespace label that names the leaf Queue of the namespace's pods. It is the only
	// meaning of this key that kubehtc reads: the grid gateway's site queue has its own key, SiteQueueLabel.
	QueueLabel = "kubehtc.io/queue"

	// UserLabel is the pod label that names the pod's user inside its leaf Queue; pods without it belong to the
	// user named after their namespace. The grid gateway sets it from the token subject or certificate DN.
	UserLabel = "kubehtc.io/user"

	// ClassLabel is the pod label that names a pod's workload class (batch, service, gpu); the PackSpread
	// plugin's default class label.
	ClassLabel = "kubehtc.io/class"
)

// Labels and annotations of the grid gateway's objects (GridJobs and the Pods, Secrets and ConfigMaps it
// makes for them).
const (
	// SiteQueueLabel carries the site (ARC) queue of a GridJob and of its Pod, such as "atlas-prod". It is not
	// a fair-share Queue: that one comes from the Namespace (QueueLabel).
	//
	// Gateways before this key wrote the site queue under LegacySiteQueueLabel ("kubehtc.io/queue", the same
	// key as the Namespace label, with another meaning); read it through SiteQueueOf, which falls back to the
	// old key on objects written by them.
	SiteQueueLabel = "kubehtc.io/site-queue"
	// LegacySiteQueueLabel is the key under which older gateways stored the site queue of a GridJob or Pod.
	// Read only (SiteQueueOf); never written.
	LegacySiteQueueLabel = "kubehtc.io/queue"

	// GridJobLabel names the GridJob of a Pod, Secret or ConfigMap.
	GridJobLabel = "kubehtc.io/gridjob"
	// OwnerLabel is a hash of the owner identity on a GridJob, so that the gateway lists one owner's jobs
	// with a label selector.
	OwnerLabel = "kubehtc.io/owner"
	// InterfaceLabel names the front door a GridJob came through (InterfaceARCREST).
	InterfaceLabel = "kubehtc.io/interface"
	// InterfaceARCREST is the InterfaceLabel value of GridJobs submitted through ARC REST.
	InterfaceARCREST = "arcrest"
	// SessionInputsAnnotation on a GridJob says that its inputs are uploaded to the gateway's session store
	// rather than to the inputs ConfigMap, and whether all have arrived ("pending", "ready").
	SessionInputsAnnotation = "kubehtc.io/session-inputs"

	// OutputsCollectedAnnotation is set on a GridJob (to the time) once the gateway's collector has put the
	// ended job's outputs into its session directory.
	OutputsCollectedAnnotation = "arc.kubehtc.io/outputs-collected"
	// StdoutAnnotation keeps the session-relative name of an ARC job's standard output (GLUE2 StdOut).
	StdoutAnnotation = "arc.kubehtc.io/stdout"
	// StderrAnnotation keeps the name of an ARC job's standard error (GLUE2 StdErr).
	StderrAnnotation = "arc.kubehtc.io/stderr"
	// LogDirAnnotation keeps the name of an ARC job's log directory (xRSL gmlog, GLUE2 LogDir).
	LogDirAnnotation = "arc.kubehtc.io/logdir"
	// DelegationAnnotation on a GridJob names the delegation the job uses; as a label it marks delegation
	// Secrets.
	DelegationAnnotation = "arc.kubehtc.io/delegation"
	// DelegationLabel marks delegation Secrets (the same key as DelegationAnnotation).
	DelegationLabel = DelegationAnnotation
	// DelegationOwnerAnnotation holds the full owner key of a delegation Secret (its label is a hash).
	DelegationOwnerAnnotation = "arc.kubehtc.io/owner"
	// DelegationExpiresAnnotation is the expiry of a delegation Secret's stored proxy (RFC 3339).
	DelegationExpiresAnnotation = "arc.kubehtc.io/expires"
	// DelegationDNAnnotation is the EEC DN of a delegation Secret's stored proxy.
	DelegationDNAnnotation = "arc.kubehtc.io/dn"
)

// SiteQueueOf returns the site queue of a GridJob or Pod from its labels: SiteQueueLabel, else (objects
// written by gateways before that key) LegacySiteQueueLabel. Never call it on a Namespace's labels.
func SiteQueueOf(labels map[string]string) string {
	if q, ok := labels[SiteQueueLabel]; ok {
		return q
	}
	return labels[LegacySiteQueueLabel]
}

// Annotations of storage (CSI) mounts.
const (
	// CVMFSAnnotation on a pod lists CVMFS repositories to mount, separated by commas: "atlas.cern.ch,sft.cern.ch".
	CVMFSAnnotation = "kubehtc.io/cvmfs"
	// EOSAnnotation on a pod lists EOS paths to mount, separated by commas: "/eos/atlas,/eos/user/j/jdoe".
	EOSAnnotation = "kubehtc.io/eos"
	// MountedCVMFSAnnotation on a Node lists the repositories mounted into pods on it, comma-separated, sorted.
	MountedCVMFSAnnotation = "csi.kubehtc.io/mounted-cvmfs"
	// MountedEOSAnnotation on a Node lists the EOS paths mounted into pods on it.
	MountedEOSAnnotation = "csi.kubehtc.io/mounted-eos"
)

// Names of nodes, resources and simulated pods (local cluster, simulations).
const (
	// GPUResource is the extended resource GPU nodes advertise and GPU pods request.
	GPUResource corev1.ResourceName = "nvidia.com/gpu"
	// GPUModelLabel carries the GPU model of GPU nodes (the label NVIDIA's GPU feature discovery sets).
	GPUModelLabel = "nvidia.com/gpu.product"
	// PoolLabel names the node pool a node belongs to.
	PoolLabel = "kubehtc.io/pool"

	// RuntimeAnnotation is how long a simulated pod runs once Running, as a Go duration ("90s", "2h"). A pod
	// without it runs until deleted, like a web service.
	RuntimeAnnotation = "sim.kubehtc.io/runtime"
	// ExitCodeAnnotation makes a simulated pod end with this exit code after its runtime (immediately without
	// one): Failed for a non-zero code, Succeeded for "0".
	ExitCodeAnnotation = "sim.kubehtc.io/exit-code"
	// SimRunLabel marks the objects of one cluster-mode simulation run.
	SimRunLabel = "sim.kubehtc.io/run"
	// DemoPartLabel marks the objects of one part of the demo.
	DemoPartLabel = "demo.kubehtc.io/part"
)

// Names of APEL accounting (gridgateway/apel): on Pods of queues, GridJobs and Nodes.
const (
	// APELFinalizer keeps a bound Pod of a queue until its APEL record is staged.
	APELFinalizer = "apel.kubehtc.io/record"
	// APELAccountedAnnotation on a Pod says its accounting is done: the record's EndTime (Unix seconds), or
	// "not-run" for a Pod that never ran.
	APELAccountedAnnotation = "apel.kubehtc.io/accounted"
	// APELCPUSourceAnnotation on an accounted Pod says where its CpuDuration came from: "measured" or
	// "estimated" (wall time × cores).
	APELCPUSourceAnnotation = "apel.kubehtc.io/cpu-source"
	// FQANAnnotation on a GridJob is the submitter's primary VOMS FQAN, when the gateway knew it.
	FQANAnnotation = "apel.kubehtc.io/fqan"
	// HEPscore23Label on a Node is its HEPscore23 benchmark per core, e.g. "17.5".
	HEPscore23Label = "kubehtc.io/hepscore23"
)
