package gang_test

import (
	"context"
	"fmt"
	"sort"
	"testing"
	"time"

	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"

	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
	"github.com/kubehtc/kubehtc/scheduler/gang/gangtest"
)

// 3. Fifty 64-pod gangs of 4 cpu compete for a cluster that holds ten at a time; members run 10 s. No gang is
// ever left partially bound while others wait (the deadlock of coscheduling at Permit), all fifty finish, and
// progress never stalls.
func TestCompetingGangsNeverDeadlock(t *testing.T) {
	cs, dyn := clients(t)
	ns := "gang-contention"
	clustertest.Namespace(t, cs, ns)
	rec := gangtest.Record(cs, ns)
	defer rec.Stop()
	ctx := context.Background()
	const gangs, size = 50, 64
	specs := make([]gangtest.Spec, gangs)
	for g := range gangs {
		specs[g] = gangtest.Spec{Namespace: ns, Name: fmt.Sprintf("g%02d", g), Size: size, CPU: "4", Runtime: 10 * time.Second}
	}
	// Create all gangs interleaved, pod by pod, so that every gang is incomplete for a while and all compete.
	for _, s := range specs {
		pg, err := s.PodGroup()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := dyn.Resource(gangtest.PodGroups).Namespace(ns).Create(ctx, pg, metav1.CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	createParallel(t, gangs*size, func(i int) error {
		return gangtest.CreatePods(ctx, cs, specs[i%gangs], i/gangs, i/gangs+1)
	})

	// Watch for a gang that stays partially bound without progress, and for the whole run stalling.
	const stuckAfter = 30 * time.Second
	var violations []string
	lastProgress := time.Now()
	lastBound := map[string]int{}
	lastChange := map[string]time.Time{}
	clustertest.Poll(t, 20*time.Minute, func(context.Context) (bool, error) {
		evs := rec.Events()
		now := time.Now()
		finished := 0
		for _, s := range specs {
			b := gangtest.Count(evs, s.Name, "bind")
			if b != lastBound[s.Name] {
				lastBound[s.Name], lastChange[s.Name] = b, now
				lastProgress = now
			}
			if b > 0 && b < size && now.Sub(lastChange[s.Name]) > stuckAfter {
				violations = append(violations, fmt.Sprintf("%s: %d of %d members bound, no change for %s", s.Name, b, size, stuckAfter))
				lastChange[s.Name] = now
			}
			if gangtest.Count(evs, s.Name, "done") == size {
				finished++
			}
		}
		if now.Sub(lastProgress) > 2*time.Minute {
			return false, fmt.Errorf("no member bound for 2 minutes; %d of %d gangs finished", finished, gangs)
		}
		return finished == gangs, nil
	})
	for _, v := range violations {
		t.Error("partially bound gang:", v)
	}

	// In watch order, a gang's binds form one burst: no member of a gang binds after another member of the same
	// gang has already finished (that would mean the gang ran partially).
	running, peak := map[string]int{}, 0
	firstDone := map[string]int{}
	for _, e := range rec.Events() {
		switch e.Kind {
		case "bind":
			if d, ok := firstDone[e.Gang]; ok {
				t.Errorf("%s bound at event %d after a member of %s finished at event %d", e.Pod, e.Seq, e.Gang, d)
			}
			running[e.Gang]++
		case "done":
			if _, ok := firstDone[e.Gang]; !ok {
				firstDone[e.Gang] = e.Seq
			}
			running[e.Gang]--
			if running[e.Gang] == 0 {
				delete(running, e.Gang)
			}
		}
		peak = max(peak, len(running))
	}
	spans := make([]time.Duration, 0, gangs)
	for _, s := range specs {
		var first, last time.Time
		for _, e := range rec.Events() {
			if e.Gang == s.Name && e.Kind == "bind" {
				if first.IsZero() {
					first = e.At
				}
				last = e.At
			}
		}
		spans = append(spans, last.Sub(first))
	}
	sort.Slice(spans, func(i, j int) bool { return spans[i] < spans[j] })
	// Gangs on nodes at once can exceed ten while one gang's members finish and the next starts on what they free.
	t.Logf("50 x 64 gangs: first-to-last member bind per gang (watch delivery): median %s, max %s; most gangs with pods on nodes at once: %d",
		spans[len(spans)/2], spans[len(spans)-1], peak)
}
