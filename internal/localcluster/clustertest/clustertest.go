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
	"time"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"

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

// Poll waits until cond is true, failing the test after timeout.
func Poll(t testing.TB, timeout time.Duration, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 500*time.Millisecond, timeout, true, cond); err != nil {
		t.Fatalf("waiting: %v", err)
	}
}

// Namespace creates namespace ns and waits for its default ServiceAccount (the ServiceAccount admission
// plugin rejects pods until it exists). Cleanup deletes the namespace and waits until its pods are gone, so
// the next test starts on empty nodes.
func Namespace(t testing.TB, cs kubernetes.Interface, ns string) {
	t.Helper()
	ctx := context.Background()
	if _, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{}); err != nil {
		t.Fatalf("creating namespace %s: %v", ns, err)
	}
	t.Cleanup(func() {
		if err := cs.CoreV1().Namespaces().Delete(ctx, ns, metav1.DeleteOptions{}); err != nil {
			t.Errorf("deleting namespace %s: %v", ns, err)
			return
		}
		Poll(t, 10*time.Minute, func(ctx context.Context) (bool, error) {
			l, err := cs.CoreV1().Pods(ns).List(ctx, metav1.ListOptions{Limit: 1})
			return err == nil && len(l.Items) == 0, nil
		})
	})
	Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
}
