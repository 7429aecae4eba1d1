package integration

import (
	"context"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// TestRestartLosesAndDuplicatesNothing submits 1,000 jobs from concurrent clients that retry every failed
// call with the same client key, while the gateway is killed and started again (a new server, nothing kept
// in memory) each time another 150 submissions were accepted. Afterwards exactly 1,000 GridJobs exist,
// one per key.
func TestRestartLosesAndDuplicatesNothing(t *testing.T) {
	requireCluster(t)
	namespace(t, "atlas-gw")
	namespace(t, "cms-gw")
	atlasIss, cmsIss := newIssuer(t, atlasIssuer), newIssuer(t, cmsIssuer)
	g := startGateway(t, atlasIss, cmsIss)
	const jobs, clients, restartEvery, wantRestarts = 1000, 20, 150, 5
	owners := []struct {
		c     gatewayv1.GatewayClient
		vo    string
		queue string
	}{
		{g.client(atlasIss.token(t, "restart-atlas", allScopes)), "atlas-gw", "atlas-prod"},
		{g.client(cmsIss.token(t, "restart-cms", allScopes)), "cms-gw", "cms-prod"},
	}
	ctx := context.Background()
	var accepted, failedCalls atomic.Int64
	var restarts []int64 // accepted count at each restart
	done := make(chan struct{})
	var restarter sync.WaitGroup
	restarter.Add(1)
	go func() {
		defer restarter.Done()
		next := int64(restartEvery)
		for {
			select {
			case <-done:
				return
			case <-time.After(5 * time.Millisecond):
			}
			if n := accepted.Load(); n >= next && len(restarts) < wantRestarts {
				g.stop()
				time.Sleep(100 * time.Millisecond) // calls fail while it is down
				g.start()
				restarts = append(restarts, n)
				next = n + restartEvery
			}
		}
	}()

	ids := make([]string, jobs)
	var eg errgroup.Group
	eg.SetLimit(clients)
	for i := range jobs {
		eg.Go(func() error {
			o := owners[i%2]
			// The jobs wait for an input that never comes: no Pods, only GridJobs.
			desc := pilotDescription(o.queue, "")
			desc.Inputs = []string{"never.dat"}
			req := &gatewayv1.SubmitRequest{ClientKey: fmt.Sprintf("restart-%04d", i), Description: desc}
			for attempt := 0; ; attempt++ {
				callCtx, cancel := context.WithTimeout(ctx, 10*time.Second)
				j, err := o.c.Submit(callCtx, req)
				cancel()
				if err == nil {
					ids[i] = j.Id
					accepted.Add(1)
					return nil
				}
				failedCalls.Add(1)
				if attempt > 200 {
					return fmt.Errorf("job %d: giving up after %d attempts: %w", i, attempt, err)
				}
				time.Sleep(time.Duration(20+attempt*10) * time.Millisecond)
			}
		})
	}
	err := eg.Wait()
	close(done)
	restarter.Wait()
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("%d restarts (after %v accepted submissions); %d calls failed and were retried", len(restarts), restarts, failedCalls.Load())
	if len(restarts) < 3 {
		t.Fatalf("only %d restarts happened while submissions were in flight, want at least 3", len(restarts))
	}
	if failedCalls.Load() == 0 {
		t.Fatalf("no call failed: the restarts did not interrupt any submission")
	}

	seen := map[string]bool{}
	for i, id := range ids {
		if seen[id] {
			t.Errorf("job %d got the id %s of another job", i, id)
		}
		seen[id] = true
	}
	byKey := map[string]int{}
	total := 0
	for _, o := range owners {
		var list kubehtcv1alpha1.GridJobList
		if err := kc.List(ctx, &list, client.InNamespace(o.vo)); err != nil {
			t.Fatal(err)
		}
		for _, gj := range list.Items {
			if len(gj.Spec.ClientKey) > 8 && gj.Spec.ClientKey[:8] == "restart-" {
				byKey[gj.Spec.ClientKey]++
				total++
				if gj.Labels[translate.OwnerLabel] != translate.OwnerLabelValue(gj.Spec.Owner) {
					t.Errorf("GridJob %s has owner label %q", gj.Name, gj.Labels[translate.OwnerLabel])
				}
			}
		}
	}
	if total != jobs || len(byKey) != jobs {
		t.Fatalf("%d GridJobs with %d distinct client keys, want exactly %d", total, len(byKey), jobs)
	}
	for k, n := range byKey {
		if n != 1 {
			t.Errorf("client key %s: %d GridJobs", k, n)
		}
	}
	// Clean up so that other tests' controllers have less to look at.
	for _, o := range owners {
		_ = kc.DeleteAllOf(ctx, &kubehtcv1alpha1.GridJob{}, client.InNamespace(o.vo), client.MatchingLabels{translate.OwnerLabel: ownerLabelOf(o.vo)})
	}
}

func ownerLabelOf(vo string) string {
	sub := map[string]string{"atlas-gw": "restart-atlas", "cms-gw": "restart-cms"}[vo]
	iss := map[string]string{"atlas-gw": atlasIssuer, "cms-gw": cmsIssuer}[vo]
	return translate.OwnerLabelValue(kubehtcv1alpha1.GridJobOwner{Issuer: iss, Subject: sub})
}
