package arcrest

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/grpcapi"
	"github.com/kubehtc/kubehtc/gridgateway/jobs"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// TestBothDoorsMakeTheSamePod submits one job through ARC REST and the same job (the description the ARC
// door parsed) through the gRPC API, as the same caller, and checks that the gateway core made GridJobs
// whose Pods are identical but for what names the job (its name, owner reference and GridJob label) and
// for what only ARC records (its interface label and stdout annotation live on the GridJob, not the Pod).
func TestBothDoorsMakeTheSamePod(t *testing.T) {
	f := newFixture(t)
	ctx := context.Background()
	const xrsl = `&(executable="run.sh")(arguments="-q" "pilot")(jobname="pilot-1")(queue="atlas-prod")(count=2)(memory=1000)` +
		`(walltime="90")(environment=(PANDA_SITE "CERN"))(stdout="out.txt")`
	tok := f.certs.token(t, "pilot-factory", auth.ScopeCreate+" "+auth.ScopeRead)
	arcJob := f.gridJob(f.submit(caller{token: tok}, xrsl))

	reqs, err := ParseXRSL(xrsl)
	if err != nil || len(reqs) != 1 {
		t.Fatalf("ParseXRSL: %v, %d requests", err, len(reqs))
	}
	d := reqs[0].Description
	id, err := f.srv.opts.Auth.VerifyToken(ctx, tok)
	if err != nil {
		t.Fatal(err)
	}
	g := &grpcapi.Server{Client: f.client, Site: f.srv.opts.Site}
	j, err := g.Submit(auth.WithIdentity(ctx, id), &gatewayv1.SubmitRequest{ClientKey: "same-job", Description: &gatewayv1.JobDescription{
		Name: d.Name, Queue: d.Queue, Cores: d.Cores, MemoryMib: d.MemoryMiB, WallTimeSeconds: d.WallTimeSeconds, DiskMib: d.DiskMiB,
		Gpus: d.GPUs, Image: d.Image, Executable: d.Executable, Arguments: d.Arguments, Environment: d.Environment,
		RuntimeEnvironments: d.RuntimeEnvironments, Inputs: d.Inputs, Outputs: d.Outputs,
	}})
	if err != nil {
		t.Fatal(err)
	}
	grpcJob := f.gridJob(j.GetId())

	if diff := cmp.Diff(arcJob.Spec.Description, grpcJob.Spec.Description); diff != "" {
		t.Errorf("translated descriptions differ (-ARC,+gRPC):\n%s", diff)
	}
	for _, key := range []string{kubehtcv1alpha1.OwnerLabel, kubehtcv1alpha1.SiteQueueLabel} {
		if arcJob.Labels[key] == "" || arcJob.Labels[key] != grpcJob.Labels[key] {
			t.Errorf("label %s: ARC %q, gRPC %q", key, arcJob.Labels[key], grpcJob.Labels[key])
		}
	}
	if want := jobs.Name(id.Owner, grpcJob.Spec.ClientKey); grpcJob.Name != want {
		t.Errorf("gRPC job name %s, want %s (owner and client key)", grpcJob.Name, want)
	}
	if want := jobs.Name(id.Owner, arcJob.Spec.ClientKey); arcJob.Name != want {
		t.Errorf("ARC job name %s, want %s (owner and client key)", arcJob.Name, want)
	}

	pod := func(gj *kubehtcv1alpha1.GridJob) any {
		t.Helper()
		p, err := translate.Pod(gj, translate.PodOptions{SchedulerName: "kubehtc"})
		if err != nil {
			t.Fatal(err)
		}
		p.Name, p.OwnerReferences = "", nil
		delete(p.Labels, kubehtcv1alpha1.GridJobLabel)
		return p
	}
	if diff := cmp.Diff(pod(arcJob), pod(grpcJob)); diff != "" {
		t.Errorf("Pods differ (-ARC,+gRPC):\n%s", diff)
	}
}
