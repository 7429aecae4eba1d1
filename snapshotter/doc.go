// Package snapshotter holds the node side of lazy image pulling: the configuration of kubehtc-snapshotter (a
// containerd remote snapshotter built on the stargz-snapshotter library) and the rendering of everything a node
// needs from one site configuration — the snapshotter's TOML file and the containerd config fragment for
// containerd 1.6/1.7 or 2.x (proxy plugin, CRI snapshotter, remote-snapshot annotations).
//
// With lazy pulling, containerd does not download image layers: the snapshotter mounts each eStargz layer over
// FUSE and fetches file contents from the registry with HTTP range requests when they are first read. A job
// whose image is tens of GB starts after fetching the few MB it reads at start-up.
//
// The daemon is in package daemon, the eStargz conversion in package convert.
package snapshotter
