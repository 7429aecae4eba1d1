// Package v1alpha1 holds kubehtc's own API types, group kubehtc.io, version v1alpha1 (GridJob; more kinds
// join later). It imports only k8s.io/api and apimachinery.
//
// +kubebuilder:object:generate=true
// +groupName=kubehtc.io
package v1alpha1
