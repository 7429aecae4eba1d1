package v1alpha1

import (
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// GridJobState is the state of a grid job, named as in the NorduGrid ARC REST interface.
// +kubebuilder:validation:Enum=ACCEPTING;ACCEPTED;PREPARING;PREPARED;SUBMITTING;QUEUING;RUNNING;HELD;EXITINGLRMS;OTHER;EXECUTED;FINISHING;FINISHED;FAILED;KILLING;KILLED;WIPED
type GridJobState string

// The ARC REST states a GridJob goes through. The controller uses ACCEPTING (stored, waiting for inputs),
// SUBMITTING (creating the Pod), QUEUING (Pod Pending), RUNNING, FINISHED, FAILED, KILLING and KILLED.
const (
	StateAccepting   GridJobState = "ACCEPTING"
	StateAccepted    GridJobState = "ACCEPTED"
	StatePreparing   GridJobState = "PREPARING"
	StatePrepared    GridJobState = "PREPARED"
	StateSubmitting  GridJobState = "SUBMITTING"
	StateQueuing     GridJobState = "QUEUING"
	StateRunning     GridJobState = "RUNNING"
	StateHeld        GridJobState = "HELD"
	StateExitingLRMS GridJobState = "EXITINGLRMS"
	StateOther       GridJobState = "OTHER"
	StateExecuted    GridJobState = "EXECUTED"
	StateFinishing   GridJobState = "FINISHING"
	StateFinished    GridJobState = "FINISHED"
	StateFailed      GridJobState = "FAILED"
	StateKilling     GridJobState = "KILLING"
	StateKilled      GridJobState = "KILLED"
	StateWiped       GridJobState = "WIPED"
)

// Terminal reports whether no further transition follows the state.
func (s GridJobState) Terminal() bool {
	return s == StateFinished || s == StateFailed || s == StateKilled || s == StateWiped
}

// CredentialType says what the job's delegated credential is.
// +kubebuilder:validation:Enum=X509Proxy;BearerToken
type CredentialType string

const (
	// CredentialX509Proxy is an RFC 3820 proxy in PEM (certificate chain and key); the Pod gets X509_USER_PROXY.
	CredentialX509Proxy CredentialType = "X509Proxy"
	// CredentialBearerToken is a JWT; the Pod gets BEARER_TOKEN_FILE.
	CredentialBearerToken CredentialType = "BearerToken"
)

// GridJobOwner is the authenticated identity that submitted the job: a token's issuer and subject, or a
// certificate's distinguished name.
// +kubebuilder:validation:XValidation:rule="(has(self.subject) && has(self.issuer)) || has(self.dn)",message="an owner is a token (issuer and subject) or a certificate DN"
type GridJobOwner struct {
	// Issuer is the token issuer (iss).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Issuer string `json:"issuer,omitempty"`
	// Subject is the token subject (sub).
	// +optional
	// +kubebuilder:validation:MaxLength=512
	Subject string `json:"subject,omitempty"`
	// DN is the distinguished name of the client certificate (the end-entity certificate for a proxy).
	// +optional
	// +kubebuilder:validation:MaxLength=1024
	DN string `json:"dn,omitempty"`
}

// EnvVar is one environment variable of the job.
type EnvVar struct {
	// Name of the variable.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=256
	// +kubebuilder:validation:Pattern=`^[A-Za-z_][A-Za-z0-9_]*$`
	Name string `json:"name"`
	// Value of the variable.
	// +optional
	// +kubebuilder:validation:MaxLength=4096
	Value string `json:"value,omitempty"`
}

// CVMFSMount is one CVMFS repository mounted read-only at /cvmfs/<repository>.
type CVMFSMount struct {
	// Repository is the repository name, e.g. atlas.cern.ch.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=253
	// +kubebuilder:validation:Pattern=`^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$`
	Repository string `json:"repository"`
}

// GridJobDescription is a pilot's description translated to what a Pod needs. The gateway fills it from the
// client's description and the queue profile; the controller turns it into a Pod without reading site
// configuration.
type GridJobDescription struct {
	// Name is the client's job name.
	// +optional
	// +kubebuilder:validation:MaxLength=256
	Name string `json:"name,omitempty"`
	// Cores is the number of CPU cores (requests and limits).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1024
	Cores int32 `json:"cores"`
	// MemoryMiB is the memory of the whole job in MiB (requests and limits).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=16777216
	MemoryMiB int64 `json:"memoryMiB"`
	// WallTimeSeconds bounds the run time (the Pod's activeDeadlineSeconds).
	// +required
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=31536000
	WallTimeSeconds int64 `json:"wallTimeSeconds"`
	// DiskMiB is the scratch space in MiB (ephemeral-storage requests and limits, an emptyDir session volume).
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=16777216
	DiskMiB int64 `json:"diskMiB,omitempty"`
	// GPUs is the number of nvidia.com/gpu devices.
	// +optional
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=64
	GPUs int32 `json:"gpus,omitempty"`
	// Image is the container image.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=512
	Image string `json:"image"`
	// Command is the executable and its leading arguments; empty uses the image's entrypoint.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=4096
	Command []string `json:"command,omitempty"`
	// Args are the arguments after Command.
	// +optional
	// +listType=atomic
	// +kubebuilder:validation:MaxItems=256
	// +kubebuilder:validation:items:MaxLength=4096
	Args []string `json:"args,omitempty"`
	// Env are environment variables, the client's and those of its runtime environments.
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=128
	Env []EnvVar `json:"env,omitempty"`
	// RuntimeEnvironments are the names the client asked for (e.g. APPS/HEP/ATLAS-SITE, ENV/PROXY), kept for
	// the record; their effects are already in Env, CVMFS and MountCredential.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=32
	// +kubebuilder:validation:items:MaxLength=256
	RuntimeEnvironments []string `json:"runtimeEnvironments,omitempty"`
	// CVMFS are the repositories to mount read-only.
	// +optional
	// +listType=map
	// +listMapKey=repository
	// +kubebuilder:validation:MaxItems=32
	CVMFS []CVMFSMount `json:"cvmfs,omitempty"`
	// Inputs are files the client uploads before the job may start (in the Pod under /session).
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	// +kubebuilder:validation:items:Pattern=`^[-._a-zA-Z0-9]+$`
	Inputs []string `json:"inputs,omitempty"`
	// Outputs are files the job leaves in its session directory for the client to retrieve.
	// +optional
	// +listType=set
	// +kubebuilder:validation:MaxItems=64
	// +kubebuilder:validation:items:MaxLength=253
	Outputs []string `json:"outputs,omitempty"`
	// PriorityClassName comes from the queue profile.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	PriorityClassName string `json:"priorityClassName,omitempty"`
	// NodeSelector comes from the queue profile.
	// +optional
	// +kubebuilder:validation:MaxProperties=32
	NodeSelector map[string]string `json:"nodeSelector,omitempty"`
	// MountCredential mounts the credential Secret and sets X509_USER_PROXY or BEARER_TOKEN_FILE.
	// +optional
	MountCredential bool `json:"mountCredential,omitempty"`
	// PodLabels come from the queue profile (e.g. for monitoring); kubehtc's own labels take precedence.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	PodLabels map[string]string `json:"podLabels,omitempty"`
}

// GridJobSpec is what was submitted.
type GridJobSpec struct {
	// Owner is who submitted the job; only this identity sees and changes it through the gateway.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="owner is immutable"
	Owner GridJobOwner `json:"owner"`
	// VO is the virtual organisation the owner was mapped to.
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	VO string `json:"vo"`
	// Queue is the site queue (a profile of the gateway's site configuration).
	// +required
	// +kubebuilder:validation:MinLength=1
	// +kubebuilder:validation:MaxLength=63
	Queue string `json:"queue"`
	// ClientKey is the client-chosen idempotency key of the submission.
	// +optional
	// +kubebuilder:validation:MaxLength=128
	ClientKey string `json:"clientKey,omitempty"`
	// Description is the translated job description.
	// +required
	// +kubebuilder:validation:XValidation:rule="self == oldSelf",message="description is immutable"
	Description GridJobDescription `json:"description"`
	// CredentialSecretName names a Secret in the job's namespace holding the delegated credential under the
	// key "credential".
	// +optional
	// +kubebuilder:validation:MaxLength=253
	CredentialSecretName string `json:"credentialSecretName,omitempty"`
	// CredentialType says what the credential is.
	// +optional
	CredentialType CredentialType `json:"credentialType,omitempty"`
	// Cancel asks for the job to be killed: its Pod is deleted and the state becomes KILLED.
	// +optional
	Cancel bool `json:"cancel,omitempty"`
}

// GridJobStatus is what the controller observed.
type GridJobStatus struct {
	// State is the ARC REST state.
	// +optional
	State GridJobState `json:"state,omitempty"`
	// PodName is the Pod running the job (the ARC LocalIDFromManager).
	// +optional
	PodName string `json:"podName,omitempty"`
	// Node is the node the Pod was bound to (the ARC ExecutionNode).
	// +optional
	Node string `json:"node,omitempty"`
	// ExitCode of the job's container, once it ended.
	// +optional
	ExitCode *int32 `json:"exitCode,omitempty"`
	// FailureReason is a short CamelCase reason for FAILED or KILLED (e.g. OOMKilled, DeadlineExceeded).
	// +optional
	FailureReason string `json:"failureReason,omitempty"`
	// Message is a human-readable explanation of the state.
	// +optional
	Message string `json:"message,omitempty"`
	// SubmitTime is when the gateway accepted the job.
	// +optional
	SubmitTime *metav1.Time `json:"submitTime,omitempty"`
	// StartTime is when the Pod started running.
	// +optional
	StartTime *metav1.Time `json:"startTime,omitempty"`
	// EndTime is when the job reached a terminal state.
	// +optional
	EndTime *metav1.Time `json:"endTime,omitempty"`
	// ObservedGeneration is the generation the status was computed for.
	// +optional
	ObservedGeneration int64 `json:"observedGeneration,omitempty"`
	// Conditions: InputsReady, PodCreated.
	// +optional
	// +listType=map
	// +listMapKey=type
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// GridJob is the durable record of one pilot submitted through the grid gateway.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:shortName=gj,categories=kubehtc
// +kubebuilder:printcolumn:name="VO",type=string,JSONPath=`.spec.vo`
// +kubebuilder:printcolumn:name="Queue",type=string,JSONPath=`.spec.queue`
// +kubebuilder:printcolumn:name="State",type=string,JSONPath=`.status.state`
// +kubebuilder:printcolumn:name="Node",type=string,JSONPath=`.status.node`
// +kubebuilder:printcolumn:name="Exit",type=integer,JSONPath=`.status.exitCode`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type GridJob struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the submitted job.
	// +required
	Spec GridJobSpec `json:"spec"`
	// Status is the observed state.
	// +optional
	Status GridJobStatus `json:"status,omitempty"`
}

// GridJobList is a list of GridJobs.
//
// +kubebuilder:object:root=true
type GridJobList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the GridJobs.
	Items []GridJob `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &GridJob{}, &GridJobList{})
}
