package localcluster

import (
	"context"
	"fmt"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/utils/clock"
	kwokclientset "sigs.k8s.io/kwok/pkg/client/clientset/versioned"
	"sigs.k8s.io/kwok/pkg/kwok/controllers"
	kwokclient "sigs.k8s.io/kwok/pkg/utils/client"
)

// startKWOK runs KWOK's node and pod controllers for every node annotated kwok.x-k8s.io/node=fake, until ctx
// is cancelled. restartBackOff is the first back-off of a failed container's restart (see stages).
func startKWOK(ctx context.Context, kubeconfig string, parallelism uint, restartBackOff time.Duration) error {
	st, err := stages(restartBackOff)
	if err != nil {
		return err
	}
	cs, err := kwokclient.NewClientset("", kubeconfig)
	if err != nil {
		return fmt.Errorf("kwok clients: %w", err)
	}
	restConfig, err := cs.ToRESTConfig()
	if err != nil {
		return fmt.Errorf("kwok clients: %w", err)
	}
	dynamicClient, err := cs.ToDynamicClient()
	if err != nil {
		return fmt.Errorf("kwok clients: %w", err)
	}
	restMapper, err := cs.ToRESTMapper()
	if err != nil {
		return fmt.Errorf("kwok clients: %w", err)
	}
	restClient, err := rest.RESTClientFor(restConfig)
	if err != nil {
		return fmt.Errorf("kwok clients: %w", err)
	}
	typedClient, err := kubernetes.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("kwok clients: %w", err)
	}
	kwokClient, err := kwokclientset.NewForConfig(restConfig)
	if err != nil {
		return fmt.Errorf("kwok clients: %w", err)
	}
	ctr, err := controllers.NewController(controllers.Config{
		Clock:                             clock.RealClock{},
		DynamicClient:                     dynamicClient,
		RESTClient:                        restClient,
		RESTMapper:                        restMapper,
		ImpersonatingDynamicClient:        cs.ToImpersonatingDynamicClient(),
		ImpersonatingTypedClient:          cs.ToImpersonatingTypedClient(),
		TypedClient:                       typedClient,
		TypedKwokClient:                   kwokClient,
		ManageNodesWithAnnotationSelector: kwokNodeAnnotation + "=fake",
		CIDR:                              "10.128.0.0/10",
		NodeIP:                            "10.0.0.1",
		PodPlayStageParallelism:           parallelism,
		NodePlayStageParallelism:          parallelism,
		NodeLeaseParallelism:              1,
		PodsOnNodeSyncParallelism:         1,
		LocalStages:                       st,
		ID:                                "kubehtc-local",
	})
	if err != nil {
		return fmt.Errorf("kwok controller: %w", err)
	}
	if err := ctr.Start(ctx); err != nil {
		return fmt.Errorf("kwok controller: %w", err)
	}
	return nil
}
