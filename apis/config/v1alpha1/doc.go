// Package v1alpha1 holds the versioned arguments of kubehtc's scheduler plugins, as they appear under
// profiles[].pluginConfig[].args in a KubeSchedulerConfiguration. Each type has a defaults function and a
// validation function; Decode* turns what the scheduler hands a plugin (runtime.Unknown, or nil when the
// configuration sets nothing) into defaulted, validated args.
//
// This package imports only k8s.io/api and k8s.io/apimachinery.
package v1alpha1
