// Package inject adds CVMFS and EOS mounts to a pod: read-only CSI inline (ephemeral) volumes with
// mountPropagation HostToContainer, mounted at /cvmfs/<repository> and at the EOS path in every container.
//
// It is pure code over k8s.io/api types so that both the mutating admission webhook (package csi/webhook,
// run by kubehtc-controller) and the grid gateway's pilot→Pod translation use exactly the same rules.
//
// Pods ask for mounts with annotations:
//
//	kubehtc.io/cvmfs: atlas.cern.ch,sft.cern.ch
//	kubehtc.io/eos: /eos/atlas
//
// HostToContainer propagation matters: CVMFS and EOS are FUSE/autofs mounts on the node, and a repository
// that the node mounts (or remounts, after a client restart) after the container started is only visible
// inside the container through propagation (see cvmfs-csi issues #44, #70 and #172).
package inject
