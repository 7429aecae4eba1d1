// Package webhook is the mutating admission webhook that injects CVMFS and EOS mounts into pods annotated
// kubehtc.io/cvmfs or kubehtc.io/eos (the rules are those of csi/inject). kubehtc-controller serves it
// (internal/controllermanager/setup_csi.go); deploy/csi/webhook.yaml registers it.
//
// Failure policy: a pod whose annotation is invalid is rejected with the reason (a job that cannot see its
// software would only fail later, on a node). The registration sends only annotated pods to the webhook
// (matchConditions) with failurePolicy Fail, so an unavailable webhook blocks annotated pods only.
package webhook

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/klog/v2"
	ctrl "sigs.k8s.io/controller-runtime"
	"sigs.k8s.io/controller-runtime/pkg/webhook"
	"sigs.k8s.io/controller-runtime/pkg/webhook/admission"

	"github.com/kubehtc/kubehtc/csi/inject"
)

// Path is where the webhook server serves the mount injection.
const Path = "/mutate-v1-pod-kubehtc-mounts"

// Mounts is the admission handler.
type Mounts struct {
	// Options choose the CSI drivers.
	Options inject.Options
	// Decoder decodes pods.
	Decoder admission.Decoder
}

// Register adds the webhook to mgr's webhook server.
func Register(mgr ctrl.Manager, opts inject.Options) {
	mgr.GetWebhookServer().Register(Path, &webhook.Admission{Handler: &Mounts{Options: opts, Decoder: admission.NewDecoder(mgr.GetScheme())}})
}

// Handle adds the mounts an annotated pod asks for, denies a pod with an invalid request, and leaves
// every other pod alone.
func (m *Mounts) Handle(ctx context.Context, req admission.Request) admission.Response {
	pod := &corev1.Pod{}
	if err := m.Decoder.Decode(req, pod); err != nil {
		return admission.Errored(http.StatusBadRequest, err)
	}
	r, err := inject.FromAnnotations(pod.Annotations)
	if err != nil {
		return admission.Denied(fmt.Sprintf("kubehtc mount injection: %v", err))
	}
	if r.Empty() {
		return admission.Allowed("no " + inject.CVMFSAnnotation + " or " + inject.EOSAnnotation + " annotation")
	}
	if err := inject.AddMounts(&pod.Spec, r, m.Options); err != nil {
		return admission.Denied(fmt.Sprintf("kubehtc mount injection: %v", err))
	}
	mutated, err := json.Marshal(pod)
	if err != nil {
		return admission.Errored(http.StatusInternalServerError, err)
	}
	klog.FromContext(ctx).V(2).Info("Injecting mounts", "pod", klog.KRef(req.Namespace, pod.Name+pod.GenerateName), "cvmfs", r.CVMFS, "eos", r.EOS)
	return admission.PatchResponseFromRaw(req.Object.Raw, mutated)
}
