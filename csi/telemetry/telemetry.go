// Package telemetry publishes which CVMFS repositories and EOS paths are mounted on a node as annotations
// of its Node object, so that operators (and schedulers) can see where software is warm. It is cheap: the
// driver reads its mount table every period and patches the Node only when the list changed.
package telemetry

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

const (
	// CVMFSAnnotation lists the repositories mounted into pods on the node, comma-separated and sorted.
	CVMFSAnnotation = kubehtcv1alpha1.MountedCVMFSAnnotation
	// EOSAnnotation lists the EOS paths mounted into pods on the node.
	EOSAnnotation = kubehtcv1alpha1.MountedEOSAnnotation
	// DefaultInterval is how often Run reports.
	DefaultInterval = 30 * time.Second
)

// Reporter patches a Node's annotations with what is mounted on it.
type Reporter struct {
	// Client talks to the API server; it needs get and patch on nodes.
	Client kubernetes.Interface
	// NodeName is the node to annotate.
	NodeName string
	// List returns the mounted repositories and paths (driver.Driver.Mounted).
	List func() (cvmfs, eos []string, err error)
	// Interval between reports; zero means DefaultInterval.
	Interval time.Duration

	last string
}

// Report patches the node if what is mounted changed since the last successful report (always on the
// first one, so that a restarted driver corrects a stale annotation).
func (r *Reporter) Report(ctx context.Context) error {
	cvmfs, eos, err := r.List()
	if err != nil {
		return fmt.Errorf("listing mounts: %w", err)
	}
	annotations := map[string]any{CVMFSAnnotation: nil, EOSAnnotation: nil} // null removes the key
	if len(cvmfs) > 0 {
		annotations[CVMFSAnnotation] = strings.Join(cvmfs, ",")
	}
	if len(eos) > 0 {
		annotations[EOSAnnotation] = strings.Join(eos, ",")
	}
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": annotations}})
	if err != nil {
		return err
	}
	if string(patch) == r.last {
		return nil
	}
	if _, err := r.Client.CoreV1().Nodes().Patch(ctx, r.NodeName, types.MergePatchType, patch, metav1.PatchOptions{}); err != nil {
		return fmt.Errorf("annotating node %s: %w", r.NodeName, err)
	}
	klog.FromContext(ctx).V(1).Info("Reported mounts", "node", r.NodeName, "cvmfs", cvmfs, "eos", eos)
	r.last = string(patch)
	return nil
}

// Run reports every Interval until ctx ends; errors are logged and retried at the next period.
func (r *Reporter) Run(ctx context.Context) {
	interval := r.Interval
	if interval == 0 {
		interval = DefaultInterval
	}
	wait.UntilWithContext(ctx, func(ctx context.Context) {
		if err := r.Report(ctx); err != nil {
			klog.FromContext(ctx).Error(err, "Reporting mounts")
		}
	}, interval)
}
