// Package clustertest gives integration tests their one local cluster per test binary (see the localcluster
// package doc: Kubernetes components keep process-global state).
//
//	var cluster *localcluster.Cluster
//
//	func TestMain(m *testing.M) { os.Exit(clustertest.Main(m, localcluster.Options{}, &cluster)) }
//
// With -short no cluster starts and *c stays nil; integration tests then skip through Require.
package clustertest

import (
	"context"
	"flag"
	"fmt"
	"os"
	"testing"

	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// Main parses the test flags, starts a local cluster with opts into *c (unless -short), runs the tests,
// stops the cluster, and returns the exit code for os.Exit.
func Main(m *testing.M, opts localcluster.Options, c **localcluster.Cluster) int {
	if !flag.Parsed() {
		flag.Parse()
	}
	if testing.Short() {
		return m.Run()
	}
	cluster, err := localcluster.Start(context.Background(), opts)
	if err != nil {
		fmt.Fprintln(os.Stderr, "starting the local cluster:", err)
		return 1
	}
	*c = cluster
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the local cluster:", err)
		code = 1
	}
	return code
}

// Require skips an integration test when no cluster was started (-short).
func Require(t testing.TB, c *localcluster.Cluster) *localcluster.Cluster {
	t.Helper()
	if c == nil {
		t.Skip("integration test: needs the local cluster (not started with -short)")
	}
	return c
}
