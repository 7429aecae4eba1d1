package localcluster

import (
	"fmt"

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

// stages returns the KWOK stages of the local cluster, grouped by resource: nodes become Ready at once and
// need no heartbeat (no node lifecycle controller runs); pods become Running when bound, finish per the
// annotations above, and disappear when deleted.
func stages() (map[internalversion.StageResourceRef][]*internalversion.Stage, error) {
	sources := []string{fast.DefaultNodeInit, podfast.DefaultPodReady, podfast.DefaultPodDelete, podSucceedStage, podExitStage}
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
