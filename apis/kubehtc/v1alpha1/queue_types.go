package v1alpha1

import (
	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
)

// RootQueueName is the name of the one Queue without a parent. Its spec.policy holds the site-wide fair-share
// settings, so the quota controller and the scheduler read them from the same object and cannot disagree.
const RootQueueName = "root"

// Condition types of a Queue.
const (
	// QueueConditionAccounted is True when the quota controller accounted the queue in its last interval.
	QueueConditionAccounted = "Accounted"
)

// FairSharePolicy are the site-wide fair-share settings, set on the root Queue only.
type FairSharePolicy struct {
	// HalfLife is the time after which past usage counts half (HTCondor PRIORITY_HALFLIFE, Slurm
	// PriorityDecayHalfLife). Default 24h. Zero is rejected: it would silently turn fair share into a
	// current-allocation policy.
	// +optional
	// +kubebuilder:default="24h"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s')",message="halfLife must be at least 1s (0 would disable usage history)"
	HalfLife metav1.Duration `json:"halfLife,omitempty"`
	// AccountingInterval is how often the quota controller recomputes usage and writes Queue status. Default 1m.
	// +optional
	// +kubebuilder:default="1m"
	// +kubebuilder:validation:XValidation:rule="duration(self) >= duration('1s') && duration(self) <= duration('1h')",message="accountingInterval must be between 1s and 1h"
	AccountingInterval metav1.Duration `json:"accountingInterval,omitempty"`
	// CoreEquivalents say how much of a resource is worth one CPU core, e.g. memory: 4Gi, nvidia.com/gpu: 125m
	// (a GPU worth 8 cores). A pod is charged its dominant resource: the largest of request/equivalent over
	// these resources. Resources not listed are not charged. Default cpu: 1, memory: 4Gi, nvidia.com/gpu: 125m.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	CoreEquivalents corev1.ResourceList `json:"coreEquivalents,omitempty"`
}

// QueueSpec is the configuration of one node of the queue tree.
type QueueSpec struct {
	// Parent is the name of the parent Queue. Every Queue but the root has one.
	// +optional
	// +kubebuilder:validation:MaxLength=253
	Parent string `json:"parent,omitempty"`
	// Weight is the queue's shares: its part of the parent's capacity is weight / sum of its and its
	// siblings' weights. Default 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	Weight int32 `json:"weight,omitempty"`
	// Guaranteed resources of the queue's subtree: its target is never below them, and a queue below its
	// target may take them back from queues above theirs by preemption (reclaim).
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Guaranteed corev1.ResourceList `json:"guaranteed,omitempty"`
	// Limit caps the requests of the running pods of the queue's subtree; pods that would exceed it wait.
	// +optional
	// +kubebuilder:validation:MaxProperties=16
	Limit corev1.ResourceList `json:"limit,omitempty"`
	// AcceptSurplus lets the queue use idle capacity of its siblings beyond its own target (HTCondor
	// GROUP_ACCEPT_SURPLUS). Default true. False makes the target a hard cap on the subtree.
	// +optional
	// +kubebuilder:default=true
	AcceptSurplus *bool `json:"acceptSurplus,omitempty"`
	// LendablePercent is how much of its target, while idle, the queue lets siblings borrow. The rest stays
	// free for the queue's own pods. Default 100.
	// +optional
	// +kubebuilder:default=100
	// +kubebuilder:validation:Minimum=0
	// +kubebuilder:validation:Maximum=100
	LendablePercent *int32 `json:"lendablePercent,omitempty"`
	// PriorityFactor multiplies the queue's decayed usage in the ranking (HTCondor's priority factor): 2 makes
	// the queue rank as if it had used twice as much. Default 1.
	// +optional
	// +kubebuilder:default=1
	// +kubebuilder:validation:Minimum=1
	// +kubebuilder:validation:Maximum=1000000
	PriorityFactor int32 `json:"priorityFactor,omitempty"`
	// Policy holds the site-wide fair-share settings; allowed only on the root Queue.
	// +optional
	Policy *FairSharePolicy `json:"policy,omitempty"`
}

// UserUsage is the usage of one user inside a leaf Queue.
type UserUsage struct {
	// Name of the user (pod label kubehtc.io/user, else the namespace).
	// +required
	// +kubebuilder:validation:MaxLength=253
	Name string `json:"name"`
	// DecayedUsage in core-equivalents.
	// +required
	DecayedUsage resource.Quantity `json:"decayedUsage"`
	// RunningPods of the user.
	// +optional
	RunningPods int32 `json:"runningPods,omitempty"`
}

// QueueStatus is what the quota controller observed and computed in its last interval.
type QueueStatus struct {
	// Usage is the sum of the requests of the subtree's running pods.
	// +optional
	Usage corev1.ResourceList `json:"usage,omitempty"`
	// UsageCoreEquivalents is Usage charged in core-equivalents (dominant resource of each pod).
	// +optional
	UsageCoreEquivalents *resource.Quantity `json:"usageCoreEquivalents,omitempty"`
	// DecayedUsage is the usage in core-equivalents averaged with the half-life: U ← β·U + (1−β)·u,
	// β = 0.5^(Δt/halfLife).
	// +optional
	DecayedUsage *resource.Quantity `json:"decayedUsage,omitempty"`
	// Share is the queue's fraction of the capacity queues divide (weights down the tree), e.g. "0.300".
	// +optional
	// +kubebuilder:validation:MaxLength=16
	Share string `json:"share,omitempty"`
	// Target is the queue's entitlement in core-equivalents: its share of the capacity left by pods outside
	// any queue, at least its guaranteed resources, at most its limit.
	// +optional
	Target *resource.Quantity `json:"target,omitempty"`
	// Rank is the queue's position in the Fair Tree order over all queues (1 is served first).
	// +optional
	Rank int32 `json:"rank,omitempty"`
	// RunningPods and PendingPods of the subtree.
	// +optional
	RunningPods int32 `json:"runningPods,omitempty"`
	// +optional
	PendingPods int32 `json:"pendingPods,omitempty"`
	// Users are the users of a leaf queue with the largest decayed usage (at most 100; users whose usage has
	// decayed to nothing are dropped).
	// +optional
	// +listType=map
	// +listMapKey=name
	// +kubebuilder:validation:MaxItems=100
	Users []UserUsage `json:"users,omitempty"`
	// LastAccountingTime is when DecayedUsage was computed; the next interval decays from it (microseconds:
	// whole seconds would add up to a second of decay per interval).
	// +optional
	LastAccountingTime *metav1.MicroTime `json:"lastAccountingTime,omitempty"`
	// Conditions: Accounted.
	// +optional
	// +listType=map
	// +listMapKey=type
	// +kubebuilder:validation:MaxItems=8
	Conditions []metav1.Condition `json:"conditions,omitempty"`
}

// Queue is one node of the cluster's fair-share tree: the root (named "root", holding the site policy), VOs
// below it, groups below them. Namespaces join a leaf Queue with the label kubehtc.io/queue.
//
// +kubebuilder:object:root=true
// +kubebuilder:subresource:status
// +kubebuilder:resource:scope=Cluster,shortName=q,categories=kubehtc
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'root' ? (!has(self.spec.parent) || size(self.spec.parent) == 0) : (has(self.spec.parent) && size(self.spec.parent) > 0)",message="the Queue named root has no parent; every other Queue has one"
// +kubebuilder:validation:XValidation:rule="self.metadata.name == 'root' || !has(self.spec.policy)",message="spec.policy is allowed only on the Queue named root"
// +kubebuilder:validation:XValidation:rule="!has(self.spec.parent) || self.metadata.name != self.spec.parent",message="a Queue cannot be its own parent"
// +kubebuilder:printcolumn:name="Parent",type=string,JSONPath=`.spec.parent`
// +kubebuilder:printcolumn:name="Weight",type=integer,JSONPath=`.spec.weight`
// +kubebuilder:printcolumn:name="Share",type=string,JSONPath=`.status.share`
// +kubebuilder:printcolumn:name="Target",type=string,JSONPath=`.status.target`
// +kubebuilder:printcolumn:name="Usage",type=string,JSONPath=`.status.usageCoreEquivalents`
// +kubebuilder:printcolumn:name="Decayed",type=string,JSONPath=`.status.decayedUsage`
// +kubebuilder:printcolumn:name="Rank",type=integer,JSONPath=`.status.rank`
// +kubebuilder:printcolumn:name="Running",type=integer,JSONPath=`.status.runningPods`
// +kubebuilder:printcolumn:name="Pending",type=integer,JSONPath=`.status.pendingPods`
// +kubebuilder:printcolumn:name="Age",type=date,JSONPath=`.metadata.creationTimestamp`
type Queue struct {
	metav1.TypeMeta   `json:",inline"`
	metav1.ObjectMeta `json:"metadata,omitempty"`

	// Spec is the queue's configuration.
	// +required
	Spec QueueSpec `json:"spec"`
	// Status is computed by the quota controller.
	// +optional
	Status QueueStatus `json:"status,omitempty"`
}

// QueueList is a list of Queues.
//
// +kubebuilder:object:root=true
type QueueList struct {
	metav1.TypeMeta `json:",inline"`
	metav1.ListMeta `json:"metadata,omitempty"`
	// Items are the Queues.
	Items []Queue `json:"items"`
}

func init() {
	knownTypes = append(knownTypes, &Queue{}, &QueueList{})
}
