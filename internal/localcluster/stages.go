package localcluster

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"sigs.k8s.io/kwok/kustomize/stage/node/fast"
	podfast "sigs.k8s.io/kwok/kustomize/stage/pod/fast"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	kwokconfig "sigs.k8s.io/kwok/pkg/config"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// Annotations that drive a simulated pod's life.
const (
	// RuntimeAnnotation is how long a pod runs once Running, as a Go duration ("90s", "2h"). A pod without it
	// runs until deleted, like a web service.
	RuntimeAnnotation = kubehtcv1alpha1.RuntimeAnnotation
	// ExitCodeAnnotation makes a pod end with this exit code after its runtime (immediately without one):
	// Failed for a non-zero code, Succeeded for "0". Junk parses as 0.
	ExitCodeAnnotation = kubehtcv1alpha1.ExitCodeAnnotation
)

// A finished simulated container reports it started when the pod did (status.startTime, set by KWOK's
// pod-ready stage), not when it ended, so that its run time can be read back (APEL accounting reads it).

// podSucceedStage finishes pods that have a runtime and no exit code: Succeeded, exit code 0, once the
// runtime has passed since the stage first matched (the pod became Running).
const podSucceedStage = `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: kubehtc-pod-succeed
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.annotations["` + RuntimeAnnotation + `"]'
      operator: 'Exists'
    - key: '.metadata.annotations["` + ExitCodeAnnotation + `"]'
      operator: 'DoesNotExist'
  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '.metadata.annotations["` + RuntimeAnnotation + `"]'
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range .spec.containers }}
      - image: {{ .image | Quote }}
        name: {{ .name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: 0
            finishedAt: {{ $now | Quote }}
            reason: Completed
            startedAt: {{ with $.status.startTime }}{{ . | Quote }}{{ else }}{{ $now | Quote }}{{ end }}
      {{ end }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: PodCompleted
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
        reason: PodCompleted
      phase: Succeeded
`

// podExitStage ends pods that carry an exit code, after their runtime (if any): Failed with that code in
// the first container's status, or Succeeded for code 0.
const podExitStage = `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: kubehtc-pod-exit
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.metadata.annotations["` + ExitCodeAnnotation + `"]'
      operator: 'Exists'
    - key: '` + restartsOnExit + `'
      operator: 'NotIn'
      values: ['true']
  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '.metadata.annotations["` + RuntimeAnnotation + `"]'
  next:
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := atoi (index .metadata.annotations "` + ExitCodeAnnotation + `") }}
      containerStatuses:
      {{ range $i, $c := .spec.containers }}
      - image: {{ $c.image | Quote }}
        name: {{ $c.name | Quote }}
        ready: false
        restartCount: 0
        started: false
        state:
          terminated:
            exitCode: {{ if eq $i 0 }}{{ $code }}{{ else }}0{{ end }}
            finishedAt: {{ $now | Quote }}
            reason: {{ if and (eq $i 0) (ne $code 0) }}Error{{ else }}Completed{{ end }}
            startedAt: {{ with $.status.startTime }}{{ . | Quote }}{{ else }}{{ $now | Quote }}{{ end }}
      {{ end }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: PodCompleted
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
        reason: PodCompleted
      phase: {{ if eq $code 0 }}Succeeded{{ else }}Failed{{ end }}
`

// restartsOnExit (a jq query) is true for a pod whose first container exits with a non-zero code (see
// ExitCodeAnnotation; junk reads as 0, as atoi does) under restartPolicy OnFailure: the kubelet restarts such a
// container in place instead of failing the pod.
const restartsOnExit = `.spec.restartPolicy == "OnFailure" and ((.metadata.annotations["` + ExitCodeAnnotation +
	`"] // "0") | test("^[-+]?0*[1-9][0-9]*$"))`

// podCrashStage is the kubelet's answer to a failed container of an OnFailure pod: once the runtime has passed,
// the first container terminates with the exit code (kept in lastState), its restartCount grows, and it waits
// in CrashLoopBackOff; the pod stays Running and not Ready. The back-off doubles from BASE seconds with each
// restart up to CAP, as the kubelet's does from 10 s to 5 min; the waiting message names it as the kubelet's
// does ("back-off 20s restarting failed container=..."), and podRestartStage reads it back from there.
const podCrashStage = `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: kubehtc-pod-crash
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '` + restartsOnExit + `'
      operator: 'In'
      values: ['true']
    - key: '.status.containerStatuses[0].state.running'
      operator: 'Exists'
  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '.metadata.annotations["` + RuntimeAnnotation + `"]'
  next:
    event:
      type: Warning
      reason: BackOff
      message: Back-off restarting failed container
    statusTemplate: |
      {{ $now := Now }}
      {{ $code := atoi (index .metadata.annotations "` + ExitCodeAnnotation + `") }}
      {{ $pod := . }}
      {{ $n := add1 (index .status.containerStatuses 0).restartCount }}
      {{- /* int64: sprig's duration reads an int as 0 */}}
      {{ $backoff := int64 BASE }}
      {{ range until (int (sub $n 1)) }}{{ $backoff = min (mul $backoff 2) CAP }}{{ end }}
      containerStatuses:
      {{ range $i, $c := .status.containerStatuses }}
      {{ if eq $i 0 }}
      - image: {{ $c.image | Quote }}
        name: {{ $c.name | Quote }}
        ready: false
        started: false
        restartCount: {{ $n }}
        lastState:
          terminated:
            exitCode: {{ $code }}
            reason: Error
            startedAt: {{ $c.state.running.startedAt | Quote }}
            finishedAt: {{ $now | Quote }}
        state:
          waiting:
            reason: CrashLoopBackOff
            message: {{ printf "back-off %s restarting failed container=%s pod=%s_%s(%s)" (duration $backoff) $c.name $pod.metadata.name $pod.metadata.namespace $pod.metadata.uid | Quote }}
      {{ else }}
      - {{ toJson $c }}
      {{ end }}
      {{ end }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: Ready
        reason: ContainersNotReady
      - lastTransitionTime: {{ $now | Quote }}
        status: "False"
        type: ContainersReady
        reason: ContainersNotReady
      phase: Running
`

// podRestartStage starts a container waiting in CrashLoopBackOff again once its back-off has passed: it runs
// (restartCount and lastState kept) and the pod is Ready; podCrashStage or podExitStage then see it again.
const podRestartStage = `
apiVersion: kwok.x-k8s.io/v1alpha1
kind: Stage
metadata:
  name: kubehtc-pod-restart
spec:
  resourceRef:
    apiGroup: v1
    kind: Pod
  selector:
    matchExpressions:
    - key: '.metadata.deletionTimestamp'
      operator: 'DoesNotExist'
    - key: '.status.phase'
      operator: 'In'
      values: ['Running']
    - key: '.status.containerStatuses[0].state.waiting.reason'
      operator: 'In'
      values: ['CrashLoopBackOff']
  delay:
    durationMilliseconds: 0
    durationFrom:
      expressionFrom: '.status.containerStatuses[0].state.waiting.message | capture("^back-off (?<d>[0-9hms]+) ").d'
  next:
    statusTemplate: |
      {{ $now := Now }}
      containerStatuses:
      {{ range $i, $c := .status.containerStatuses }}
      {{ if eq $i 0 }}
      - image: {{ $c.image | Quote }}
        name: {{ $c.name | Quote }}
        ready: true
        started: true
        restartCount: {{ $c.restartCount }}
        lastState: {{ toJson $c.lastState }}
        state:
          running:
            startedAt: {{ $now | Quote }}
      {{ else }}
      - {{ toJson $c }}
      {{ end }}
      {{ end }}
      conditions:
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: Ready
      - lastTransitionTime: {{ $now | Quote }}
        status: "True"
        type: ContainersReady
      phase: Running
`

// DefaultRestartBackOff is the kubelet's first back-off before restarting a failed container; it doubles with
// each restart up to maxBackOffFactor times itself (10 s to 5 min).
const (
	DefaultRestartBackOff = 10 * time.Second
	maxBackOffFactor      = 30
)

// stages returns the KWOK stages of the local cluster, grouped by resource: nodes become Ready at once and
// need no heartbeat (no node lifecycle controller runs); pods become Running when bound, finish per the
// annotations above (failed containers of OnFailure pods restart in place after a back-off that starts at
// restartBackOff, whole seconds), and disappear when deleted.
func stages(restartBackOff time.Duration) (map[internalversion.StageResourceRef][]*internalversion.Stage, error) {
	base := int64(restartBackOff / time.Second)
	if base < 1 {
		return nil, fmt.Errorf("restart back-off %s: want at least 1s", restartBackOff)
	}
	backoff := strings.NewReplacer("BASE", strconv.FormatInt(base, 10), "CAP", strconv.FormatInt(base*maxBackOffFactor, 10))
	sources := []string{fast.DefaultNodeInit, podfast.DefaultPodReady, podfast.DefaultPodDelete, podSucceedStage, podExitStage,
		backoff.Replace(podCrashStage), podRestartStage}
	out := map[internalversion.StageResourceRef][]*internalversion.Stage{}
	for _, src := range sources {
		st, err := kwokconfig.UnmarshalWithType[*internalversion.Stage](src)
		if err != nil {
			return nil, fmt.Errorf("kwok stage: %w", err)
		}
		out[st.Spec.ResourceRef] = append(out[st.Spec.ResourceRef], st)
	}
	return out, nil
}
