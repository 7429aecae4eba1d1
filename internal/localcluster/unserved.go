package localcluster

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"sync"

	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/informers"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/tools/cache"
	"k8s.io/klog/v2"
	"sigs.k8s.io/yaml"
)

// ReasonNoSchedulerProfile is the reason of the Warning Event on a pod whose spec.schedulerName no profile of
// the local cluster's scheduler serves: such a pod would otherwise stay Pending without a word.
const ReasonNoSchedulerProfile = "NoSchedulerProfile"

// profileNames returns the schedulerNames of a KubeSchedulerConfiguration's profiles.
func profileNames(config []byte) ([]string, error) {
	var doc struct {
		Profiles []struct {
			SchedulerName string `json:"schedulerName"`
		} `json:"profiles"`
	}
	if err := yaml.Unmarshal(config, &doc); err != nil {
		return nil, fmt.Errorf("scheduler configuration: %w", err)
	}
	var names []string
	for _, p := range doc.Profiles {
		name := p.SchedulerName
		if name == "" {
			name = corev1.DefaultSchedulerName
		}
		names = append(names, name)
	}
	if len(names) == 0 {
		names = []string{corev1.DefaultSchedulerName}
	}
	return names, nil
}

// unservedMessage says what a user with an unserved schedulerName should do.
func unservedMessage(name string, profiles []string) string {
	msg := fmt.Sprintf("no scheduler serves schedulerName %q (kubehtc-scheduler's profiles: %s); the pod stays Pending",
		name, strings.Join(profiles, ", "))
	if name == "scheduler-plugins" || name == "volcano" {
		msg += `. For gang scheduling use schedulerName "kubehtc" (Kubeflow training-operator: --gang-scheduler-name=kubehtc; docs/scheduler.md, Kubeflow)`
	}
	return msg
}

// startUnservedWarner records a ReasonNoSchedulerProfile Warning Event, once per pod, on every unbound pod
// whose schedulerName is not one of profiles. It runs until ctx is cancelled (under c.Go).
func (c *Cluster) startUnservedWarner(ctx context.Context, profiles []string) error {
	logger := klog.FromContext(ctx)
	factory := informers.NewSharedInformerFactoryWithOptions(c.client, 0, informers.WithTweakListOptions(func(o *metav1.ListOptions) {
		o.FieldSelector = "spec.nodeName="
	}))
	var mu sync.Mutex
	warned := map[types.UID]bool{}
	check := func(obj any) {
		pod, ok := obj.(*corev1.Pod)
		if !ok || pod.Spec.NodeName != "" || pod.DeletionTimestamp != nil || slices.Contains(profiles, pod.Spec.SchedulerName) {
			return
		}
		mu.Lock()
		done := warned[pod.UID]
		warned[pod.UID] = true
		mu.Unlock()
		if done {
			return
		}
		if err := recordPodWarning(ctx, c.client, pod, ReasonNoSchedulerProfile, unservedMessage(pod.Spec.SchedulerName, profiles)); err != nil {
			logger.Error(err, "Recording the unserved schedulerName event", "pod", klog.KObj(pod))
			return
		}
		logger.V(2).Info("Pod asks for a scheduler no profile serves", "pod", klog.KObj(pod), "schedulerName", pod.Spec.SchedulerName)
	}
	inf := factory.Core().V1().Pods().Informer()
	if _, err := inf.AddEventHandler(cache.ResourceEventHandlerFuncs{
		AddFunc:    check,
		UpdateFunc: func(_, obj any) { check(obj) },
		DeleteFunc: func(obj any) {
			if pod, ok := obj.(*corev1.Pod); ok {
				mu.Lock()
				delete(warned, pod.UID)
				mu.Unlock()
			}
		},
	}); err != nil {
		return err
	}
	c.Go(func() { inf.Run(ctx.Done()) })
	return nil
}

// recordPodWarning creates a Warning Event on pod, from the component "kubehtc-local".
func recordPodWarning(ctx context.Context, cs kubernetes.Interface, pod *corev1.Pod, reason, message string) error {
	now := metav1.Now()
	_, err := cs.CoreV1().Events(pod.Namespace).Create(ctx, &corev1.Event{
		ObjectMeta: metav1.ObjectMeta{GenerateName: pod.Name + ".", Namespace: pod.Namespace},
		InvolvedObject: corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: pod.Namespace, Name: pod.Name,
			UID: pod.UID, ResourceVersion: pod.ResourceVersion},
		Reason: reason, Message: message, Type: corev1.EventTypeWarning,
		Source:         corev1.EventSource{Component: "kubehtc-local"},
		FirstTimestamp: now, LastTimestamp: now, Count: 1,
	}, metav1.CreateOptions{})
	return err
}
