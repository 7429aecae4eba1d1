package integration

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/util/retry"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

func gridJob(ns, name string, env ...kubehtcv1alpha1.EnvVar) *kubehtcv1alpha1.GridJob {
	return &kubehtcv1alpha1.GridJob{
		ObjectMeta: metav1.ObjectMeta{Name: name, Namespace: ns},
		Spec: kubehtcv1alpha1.GridJobSpec{
			Owner: kubehtcv1alpha1.GridJobOwner{Issuer: "https://iss.example/", Subject: "factory"},
			VO:    ns, Queue: ns + "-prod",
			Description: kubehtcv1alpha1.GridJobDescription{Cores: 1, MemoryMiB: 1000, WallTimeSeconds: 600, Image: "pilot:1", Env: env},
		},
	}
}

func waitState(t *testing.T, ns, name string, want kubehtcv1alpha1.GridJobState) *kubehtcv1alpha1.GridJob {
	t.Helper()
	var gj kubehtcv1alpha1.GridJob
	defer func(start time.Time) {
		t.Logf("GridJob %s %s after %s", name, want, time.Since(start).Round(time.Millisecond))
	}(time.Now())
	poll(t, 2*time.Minute, fmt.Sprintf("GridJob %s/%s %s", ns, name, want), func(ctx context.Context) (bool, error) {
		if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: name}, &gj); err != nil {
			return false, err
		}
		if gj.Status.State.Terminal() && gj.Status.State != want {
			return false, fmt.Errorf("reached %s (%s: %s), want %s", gj.Status.State, gj.Status.FailureReason, gj.Status.Message, want)
		}
		return gj.Status.State == want, nil
	})
	return &gj
}

func TestControllerLifecycle(t *testing.T) {
	requireCluster(t)
	ns := "ctrl-lifecycle"
	namespace(t, ns)
	ctx := context.Background()

	// A job that runs 1 s and succeeds: FINISHED with exit code 0, node, times, an owned Pod.
	ok := gridJob(ns, "ok", kubehtcv1alpha1.EnvVar{Name: translate.SimRuntimeEnv, Value: "1s"})
	// A job exiting 3: FAILED with NonZeroExitCode.
	bad := gridJob(ns, "bad", kubehtcv1alpha1.EnvVar{Name: translate.SimRuntimeEnv, Value: "500ms"}, kubehtcv1alpha1.EnvVar{Name: translate.SimExitCodeEnv, Value: "3"})
	// A job that runs forever until cancelled.
	forever := gridJob(ns, "forever")
	// A job with a credential and an expected input: ACCEPTING until both exist.
	waiting := gridJob(ns, "waiting", kubehtcv1alpha1.EnvVar{Name: translate.SimRuntimeEnv, Value: "500ms"})
	waiting.Spec.Description.Inputs = []string{"in.dat"}
	waiting.Spec.Description.MountCredential = true
	waiting.Spec.CredentialSecretName, waiting.Spec.CredentialType = translate.CredentialSecretName("waiting"), kubehtcv1alpha1.CredentialBearerToken
	for _, gj := range []*kubehtcv1alpha1.GridJob{ok, bad, forever, waiting} {
		if err := kc.Create(ctx, gj); err != nil {
			t.Fatal(err)
		}
	}

	got := waitState(t, ns, "ok", kubehtcv1alpha1.StateFinished)
	if got.Status.ExitCode == nil || *got.Status.ExitCode != 0 || got.Status.Node == "" || got.Status.PodName != "ok" ||
		got.Status.SubmitTime == nil || got.Status.StartTime == nil || got.Status.EndTime == nil {
		t.Errorf("finished status %+v: want exit 0, a node, the pod and all three times", got.Status)
	}
	var pod corev1.Pod
	if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "ok"}, &pod); err != nil {
		t.Fatal(err)
	}
	if !metav1.IsControlledBy(&pod, got) || pod.Labels[translate.QueueLabel] != ns+"-prod" || pod.Spec.SchedulerName != "kubehtc" {
		t.Errorf("pod owners %v labels %v scheduler %q", pod.OwnerReferences, pod.Labels, pod.Spec.SchedulerName)
	}

	got = waitState(t, ns, "bad", kubehtcv1alpha1.StateFailed)
	if got.Status.ExitCode == nil || *got.Status.ExitCode != 3 || got.Status.FailureReason != translate.ReasonNonZeroExit {
		t.Errorf("failed status %+v: want exit 3, %s", got.Status, translate.ReasonNonZeroExit)
	}

	waitState(t, ns, "forever", kubehtcv1alpha1.StateRunning)
	patch := client.MergeFrom(forever.DeepCopy())
	forever.Spec.Cancel = true
	if err := kc.Patch(ctx, forever, patch); err != nil {
		t.Fatal(err)
	}
	got = waitState(t, ns, "forever", kubehtcv1alpha1.StateKilled)
	if got.Status.FailureReason != translate.ReasonCancelled {
		t.Errorf("killed reason %q", got.Status.FailureReason)
	}
	poll(t, time.Minute, "the cancelled job's pod to be gone", func(ctx context.Context) (bool, error) {
		err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "forever"}, &corev1.Pod{})
		return apierrors.IsNotFound(err), client.IgnoreNotFound(err)
	})

	// The waiting job has no pod while its input and credential are missing.
	time.Sleep(time.Second)
	if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "waiting"}, waiting); err != nil {
		t.Fatal(err)
	}
	if waiting.Status.State != kubehtcv1alpha1.StateAccepting {
		t.Fatalf("job without its input is %s, want ACCEPTING", waiting.Status.State)
	}
	if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "waiting"}, &corev1.Pod{}); !apierrors.IsNotFound(err) {
		t.Fatalf("job without its input has a pod (get: %v)", err)
	}
	owner := metav1.NewControllerRef(waiting, kubehtcv1alpha1.GroupVersion.WithKind("GridJob"))
	if err := kc.Create(ctx, &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: waiting.Spec.CredentialSecretName, Namespace: ns, OwnerReferences: []metav1.OwnerReference{*owner}},
		Data: map[string][]byte{translate.CredentialKey: []byte("token")}}); err != nil {
		t.Fatal(err)
	}
	if err := kc.Create(ctx, &corev1.ConfigMap{ObjectMeta: metav1.ObjectMeta{Name: translate.InputsConfigMapName("waiting"), Namespace: ns, OwnerReferences: []metav1.OwnerReference{*owner}},
		BinaryData: map[string][]byte{"in.dat": []byte("x")}}); err != nil {
		t.Fatal(err)
	}
	waitState(t, ns, "waiting", kubehtcv1alpha1.StateFinished)
	if err := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "waiting"}, &pod); err != nil {
		t.Fatal(err)
	}
	var tokenFile string
	for _, e := range pod.Spec.Containers[0].Env {
		if e.Name == "BEARER_TOKEN_FILE" {
			tokenFile = e.Value
		}
	}
	if tokenFile == "" {
		t.Errorf("pod of a job with a token credential has no BEARER_TOKEN_FILE")
	}

	// Deleting a GridJob garbage-collects its Pod and Secret. The garbage collector picks up a new CRD at its
	// next discovery resync (every 30 s), so this can take that long the first time.
	if err := kc.Delete(ctx, waiting, client.PropagationPolicy(metav1.DeletePropagationBackground)); err != nil {
		t.Fatal(err)
	}
	poll(t, time.Minute, "the deleted job's pod and secret to be collected", func(ctx context.Context) (bool, error) {
		e1 := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: "waiting"}, &corev1.Pod{})
		e2 := kc.Get(ctx, client.ObjectKey{Namespace: ns, Name: waiting.Spec.CredentialSecretName}, &corev1.Secret{})
		return apierrors.IsNotFound(e1) && apierrors.IsNotFound(e2), nil
	})
}

func TestCRDRejectsAbsurdResources(t *testing.T) {
	requireCluster(t)
	ns := "ctrl-crd"
	namespace(t, ns)
	gj := gridJob(ns, "huge")
	gj.Spec.Description.Cores = 1000000
	err := kc.Create(context.Background(), gj)
	if !apierrors.IsInvalid(err) {
		t.Fatalf("creating a GridJob with 10^6 cores: %v, want Invalid", err)
	}
	gj = gridJob(ns, "immutable")
	if err := kc.Create(context.Background(), gj); err != nil {
		t.Fatal(err)
	}
	// The controller updates the status meanwhile: retry on conflicts until the API server judges the change.
	err = retry.RetryOnConflict(retry.DefaultRetry, func() error {
		if err := kc.Get(context.Background(), client.ObjectKeyFromObject(gj), gj); err != nil {
			return err
		}
		gj.Spec.Description.Cores = 2
		return kc.Update(context.Background(), gj)
	})
	if !apierrors.IsInvalid(err) || !strings.Contains(err.Error(), "description is immutable") {
		t.Fatalf("changing a GridJob's description: %v, want Invalid: description is immutable", err)
	}
}
