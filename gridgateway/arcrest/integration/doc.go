// Package integration tests the ARC REST interface end to end on the local cluster with the real
// NorduGrid ARC client (Debian's nordugrid-arc-client and nordugrid-arc-plugins-arcrest; hack/test.sh
// installs them through hack/ensure-arc-client.sh): arcproxy, arcinfo, arcsub, arcstat, arccat, arcget,
// arckill, arcclean, arcrenew, arcsync and the token mode.
package integration
