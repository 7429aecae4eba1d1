// Package mounter puts a CVMFS repository or an EOS path at a CSI target path, and reads the mount table
// back so that the driver keeps no state of its own: after a restart, what is mounted where is recovered
// from /proc/self/mountinfo.
//
// Two implementations of Mounter:
//   - Bind bind-mounts the directory that the node's CVMFS or EOS client (usually autofs) already provides,
//     e.g. /cvmfs/atlas.cern.ch, read-only. This is the common production setup: one client per node,
//     shared by all pods, which survives restarts of the CSI driver.
//   - Helper runs the client's mount helper (mount -t cvmfs REPO DIR), one FUSE mount per target.
package mounter
