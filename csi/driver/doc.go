// Package driver is kubehtc's CSI driver for CVMFS repositories and EOS paths (cmd/kubehtc-csi): the
// Identity and Node services, and a minimal, stateless Controller service for pre-provisioned and
// dynamically "provisioned" volumes (the volume ID names the repository), next to ephemeral inline volumes
// (which is how csi/inject mounts them).
//
// Volume attributes (inline volumes' volumeAttributes, a PV's volumeAttributes, a StorageClass's
// parameters):
//
//	type:         cvmfs | eos (optional: inferred from repository or path)
//	repository:   atlas.cern.ch (cvmfs)
//	path:         /eos/atlas/... (eos)
//	clientConfig: name of a client configuration in the driver's config (optional)
//
// Every repository and path must be allowed by the driver's configuration. CVMFS is always mounted
// read-only. The driver keeps no state: what is mounted is read back from the mount table, so a restart
// of the driver neither breaks mounts in running pods nor makes publish and unpublish fail afterwards.
package driver
