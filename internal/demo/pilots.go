package demo

import (
	"context"
	"fmt"
	"time"

	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/client-go/kubernetes"
	"k8s.io/klog/v2"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	gatewayv1 "github.com/kubehtc/kubehtc/gridgateway/api/v1"
	localgateway "github.com/kubehtc/kubehtc/gridgateway/local"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

func init() {
	Workloads = append(Workloads, gridPilots{})
}

// gridPilots are two pilot factories (atlas, cms) submitting a stream of pilots through the grid
// gateway's gRPC API; Submit returns once every pilot has ended, so the demo drains only after them.
// Without a gateway in the cluster (a cluster started without kubehtc's components) it submits nothing.
type gridPilots struct{}

func (gridPilots) Name() string         { return "grid pilots" }
func (gridPilots) Namespaces() []string { return localgateway.VOs }
func (gridPilots) Submit(ctx context.Context, cs kubernetes.Interface, s Scale) error {
	gw, err := localgateway.Discover(ctx, cs)
	if apierrors.IsNotFound(err) {
		klog.FromContext(ctx).Info("No grid gateway in this cluster: no pilots")
		return nil
	}
	if err != nil {
		return err
	}
	// 2 VOs x 16 pilots x 4 cores: with the batch streams, the load fits the CPU pools (see batchStream).
	pilots := s.n(16)
	ids := map[string][]string{}
	for _, vo := range localgateway.VOs {
		c, conn, err := gw.Dial(vo)
		if err != nil {
			return err
		}
		defer conn.Close()
		for i := range pilots {
			desc := &gatewayv1.JobDescription{
				Name: fmt.Sprintf("%s-pilot-%03d", vo, i), Queue: vo + "-prod", Cores: 4, MemoryMib: 8000,
				Executable: "runpilot2-wrapper.sh", Arguments: []string{"-q", vo + "-prod"},
				RuntimeEnvironments: []string{"APPS/HEP/" + map[string]string{"atlas": "ATLAS", "cms": "CMS"}[vo] + "-SITE"},
				Environment:         map[string]string{translate.SimRuntimeEnv: s.d(time.Duration(4+i%3) * time.Second).String(), "PILOT_NOKILL": "YES"},
			}
			j, err := c.Submit(ctx, &gatewayv1.SubmitRequest{ClientKey: fmt.Sprintf("demo-%s-%03d", vo, i), Description: desc})
			if err != nil {
				return fmt.Errorf("%s pilot %d: %w", vo, i, err)
			}
			ids[vo] = append(ids[vo], j.Id)
		}
	}
	// Wait until every pilot has ended.
	for _, vo := range localgateway.VOs {
		c, conn, err := gw.Dial(vo)
		if err != nil {
			return err
		}
		defer conn.Close()
		for _, id := range ids[vo] {
			for {
				j, err := c.Get(ctx, &gatewayv1.GetRequest{Id: id})
				if err != nil {
					return fmt.Errorf("pilot %s: %w", id, err)
				}
				if kubehtcv1alpha1.GridJobState(j.State).Terminal() {
					if j.State != string(kubehtcv1alpha1.StateFinished) {
						return fmt.Errorf("pilot %s ended %s: %s", id, j.State, j.Message)
					}
					break
				}
				select {
				case <-ctx.Done():
					return ctx.Err()
				case <-time.After(500 * time.Millisecond):
				}
			}
		}
	}
	return nil
}
