// Package integration holds the grid gateway's integration tests: the GridJob controller and the gRPC
// gateway against the embedded local cluster (one per test binary, started in TestMain).
package integration
