package localcluster

import (
	"context"
	"encoding/json"
	"fmt"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"sigs.k8s.io/kwok/pkg/apis/internalversion"
	"sigs.k8s.io/kwok/pkg/utils/expression"
	"sigs.k8s.io/kwok/pkg/utils/gotpl"
)

// stageNamed returns the stage of the local cluster with that name.
func stageNamed(t *testing.T, backoff time.Duration, name string) *internalversion.Stage {
	t.Helper()
	all, err := stages(backoff)
	if err != nil {
		t.Fatal(err)
	}
	for _, list := range all {
		for _, st := range list {
			if st.Name == name {
				return st
			}
		}
	}
	t.Fatalf("no stage %s", name)
	return nil
}

// TestCrashBackOffDoubles renders the crash stage as KWOK does for a pod whose container has restarted n times
// and reads the back-off back the way the restart stage's delay does: the kubelet's 10 s doubling to 5 min.
func TestCrashBackOffDoubles(t *testing.T) {
	crash := stageNamed(t, DefaultRestartBackOff, "kubehtc-pod-crash")
	restart := stageNamed(t, DefaultRestartBackOff, "kubehtc-pod-restart")
	var tmpl string
	for _, step := range crash.Spec.Steps {
		if step.Patch != nil {
			tmpl = step.Patch.Template
		}
	}
	delayQuery, err := expression.NewQuery(restart.Spec.Delay.DurationFrom.JQ.Expression)
	if err != nil {
		t.Fatal(err)
	}
	renderer := gotpl.NewRenderer(nil)
	// restartCount before the crash: the back-off is 10 s * 2^restartCount, at most 300 s.
	want := []string{"10s", "20s", "40s", "1m20s", "2m40s", "5m0s", "5m0s"}
	var got []string
	for n := range want {
		pod := map[string]any{
			"metadata": map[string]any{"name": "p", "namespace": "ns", "uid": "u",
				"annotations": map[string]any{ExitCodeAnnotation: "3"}},
			"spec": map[string]any{"restartPolicy": "OnFailure"},
			"status": map[string]any{"containerStatuses": []any{
				map[string]any{"name": "main", "image": "x", "restartCount": n,
					"state": map[string]any{"running": map[string]any{"startedAt": "2026-01-01T00:00:00Z"}}},
				map[string]any{"name": "side", "image": "y", "restartCount": 0, "ready": true,
					"state": map[string]any{"running": map[string]any{"startedAt": "2026-01-01T00:00:00Z"}}},
			}},
		}
		out, err := renderer.ToJSON(tmpl, pod)
		if err != nil {
			t.Fatalf("restartCount %d: rendering: %v", n, err)
		}
		var status struct {
			ContainerStatuses []struct {
				Name         string
				RestartCount int
				LastState    struct{ Terminated struct{ ExitCode int } }
				State        struct {
					Waiting *struct{ Reason string }
					Running *struct{ StartedAt string }
				}
			}
			Phase string
		}
		if err := json.Unmarshal(out, &status); err != nil {
			t.Fatalf("restartCount %d: %v\n%s", n, err, out)
		}
		cs := status.ContainerStatuses
		if len(cs) != 2 || cs[0].RestartCount != n+1 || cs[0].LastState.Terminated.ExitCode != 3 || cs[0].State.Waiting == nil ||
			cs[0].State.Waiting.Reason != "CrashLoopBackOff" || cs[1].Name != "side" || cs[1].State.Running == nil || status.Phase != "Running" {
			t.Errorf("restartCount %d: status after the crash:\n%s", n, out)
		}
		var obj map[string]any
		if err := json.Unmarshal(fmt.Appendf(nil, `{"status":%s}`, out), &obj); err != nil {
			t.Fatal(err)
		}
		d, err := delayQuery.Execute(context.Background(), obj)
		if err != nil || len(d) != 1 {
			t.Fatalf("restartCount %d: restart delay %v, %v", n, d, err)
		}
		got = append(got, fmt.Sprint(d[0]))
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("back-off by restart (-want,+got):\n%s", diff)
	}
}
