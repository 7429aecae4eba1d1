package localcluster

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"go.etcd.io/etcd/server/v3/embed"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	clientcmdapi "k8s.io/client-go/tools/clientcmd/api"
	"k8s.io/klog/v2"
	kwoklog "sigs.k8s.io/kwok/pkg/log"

	"github.com/kubehtc/kubehtc/deploy/crds"
	"github.com/kubehtc/kubehtc/internal/localcluster/realnode"
	"github.com/kubehtc/kubehtc/internal/version"
	kubehtcscheduler "github.com/kubehtc/kubehtc/scheduler"
)

// Options configure a local cluster. The zero value is a usable default (DefaultNodePools, a temporary
// directory, logs to a file in it).
type Options struct {
	// Dir holds etcd data, certificates, the kubeconfig and the log. Empty: a new temporary directory,
	// removed by Stop. A given directory is kept.
	Dir string
	// NodePools are the simulated nodes; empty means DefaultNodePools().
	NodePools NodePoolsConfig
	// SchedulerConfig is the KubeSchedulerConfiguration to run; nil means kubehtc's (scheduler.Config).
	SchedulerConfig []byte
	// ClientQPS and ClientBurst rate-limit the scheduler's and the controllers' API clients; 0 means 5000/10000.
	ClientQPS   float32
	ClientBurst int
	// Log receives the components' logs (klog, KWOK); nil means <Dir>/cluster.log.
	Log io.Writer
	// Verbosity is the klog level of the components' logs.
	Verbosity int
	// Components are kubehtc's own controllers, webhooks and servers to run in the cluster's process. They
	// start, in order, once the scheduler and KWOK run and the nodes exist.
	Components []Component
	// FeatureGates turn Kubernetes feature gates on or off (name to enabled; empty: the release's defaults).
	// They are process-global: they apply to the apiserver, the controllers and the scheduler of the process
	// alike, as in a real cluster where each component is given the same --feature-gates. A gate whose
	// objects are served by an API version that is off by default also turns that version on (GenericWorkload:
	// scheduling.k8s.io/v1beta1, which serves Workload and PodGroup).
	FeatureGates map[string]bool
	// RestartBackOff is how long a simulated node waits before restarting a failed container of a
	// restartPolicy OnFailure pod the first time; it doubles with each restart up to 30 times itself, as the
	// kubelet's 10 s to 5 min. Whole seconds, at least 1s; 0 means DefaultRestartBackOff (the kubelet's).
	RestartBackOff time.Duration
	// RealNodes is the number of real worker nodes (kubelet + containerd, see package realnode) to run next to
	// the simulated ones; 0 means none. They are labelled realnode.KindLabel=realnode.KindReal.
	RealNodes int
}

// Component starts one in-process part of kubehtc (a controller, a webhook server, the gateway) on the local
// cluster. It returns once started; its goroutines run under c.Go and end when ctx is cancelled (Stop
// cancels ctx, then waits for them).
type Component struct {
	// Name appears in errors.
	Name string
	// Start starts the component.
	Start func(ctx context.Context, c *Cluster) error
}

// Cluster is a running local cluster.
type Cluster struct {
	// Dir is where the cluster keeps its files.
	Dir string
	// Kubeconfig is the path of a kubeconfig for kubectl and other clients (superuser).
	Kubeconfig string
	// ClientQPS and ClientBurst are the rate limits the scheduler and controllers run with.
	ClientQPS   float32
	ClientBurst int
	// StartupDuration is how long Start took, until every node was Ready.
	StartupDuration time.Duration

	restConfig *rest.Config
	client     kubernetes.Interface
	removeDir  bool
	logFile    *os.File

	etcd           *embed.Etcd
	apiserver      *apiServer
	stopAPIServer  context.CancelFunc
	stopComponents context.CancelFunc
	componentsDone []chan error
	realNodes      *realnode.Nodes
	goroutines     sync.WaitGroup
	stopOnce       sync.Once
	stopErr        error
}

var started atomic.Bool

// Start brings up a local cluster and returns when every node is Ready and the default ServiceAccount exists.
// It may be called once per process (see package doc); Stop releases everything.
func Start(ctx context.Context, opts Options) (c *Cluster, err error) {
	if !started.CompareAndSwap(false, true) {
		return nil, errAlreadyStarted
	}
	begin := time.Now()
	// The apiserver reports component-base's version at /version; an unstamped build (go build, go test)
	// would report a placeholder that kubectl and client libraries cannot parse.
	version.EnsureKubernetesVersion()
	if len(opts.NodePools.Pools) == 0 {
		opts.NodePools = DefaultNodePools()
	}
	if err := opts.NodePools.Validate(); err != nil {
		return nil, fmt.Errorf("node pools: %w", err)
	}
	if opts.SchedulerConfig == nil {
		opts.SchedulerConfig = kubehtcscheduler.Config
	}
	if opts.RestartBackOff == 0 {
		opts.RestartBackOff = DefaultRestartBackOff
	}
	if opts.RestartBackOff < time.Second {
		return nil, fmt.Errorf("RestartBackOff %s: want at least 1s", opts.RestartBackOff)
	}
	if opts.ClientQPS == 0 {
		opts.ClientQPS = 5000
	}
	if opts.ClientBurst == 0 {
		opts.ClientBurst = 10000
	}

	c = &Cluster{Dir: opts.Dir, ClientQPS: opts.ClientQPS, ClientBurst: opts.ClientBurst}
	if c.Dir == "" {
		if c.Dir, err = os.MkdirTemp("", "kubehtc-local-"); err != nil {
			return nil, err
		}
		c.removeDir = true
	} else if err := os.MkdirAll(c.Dir, 0o700); err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			_ = c.Stop()
			c = nil
		}
	}()
	logw := opts.Log
	if logw == nil {
		if c.logFile, err = os.Create(filepath.Join(c.Dir, "cluster.log")); err != nil {
			return c, err
		}
		logw = c.logFile
	}
	if err := redirectKlog(logw, opts.Verbosity); err != nil {
		return c, err
	}

	var etcdURL string
	if c.etcd, etcdURL, err = startEtcd(c.Dir); err != nil {
		return c, err
	}

	// The apiserver outlives the other components so that they can shut down cleanly against it.
	apiCtx, stopAPI := context.WithCancel(context.WithoutCancel(ctx))
	c.stopAPIServer = stopAPI
	if c.apiserver, err = startAPIServer(apiCtx, c.Dir, etcdURL, opts.FeatureGates); err != nil {
		return c, err
	}
	c.restConfig = rest.CopyConfig(c.apiserver.loopback)
	c.restConfig.QPS, c.restConfig.Burst = opts.ClientQPS, opts.ClientBurst
	if c.client, err = kubernetes.NewForConfig(c.restConfig); err != nil {
		return c, err
	}
	c.Kubeconfig = filepath.Join(c.Dir, "kubeconfig")
	if err := writeKubeconfig(c.Kubeconfig, c.restConfig); err != nil {
		return c, err
	}

	// kubehtc's CRDs (and the PodGroup CRD) exist before the scheduler starts: its plugins watch PodGroups and
	// Queues, and the scheduler waits for its informers to sync before it schedules anything.
	if err := c.InstallCRDs(ctx, crds.All()...); err != nil {
		return c, err
	}

	compCtx, stopComponents := context.WithCancel(context.WithoutCancel(ctx))
	compCtx = kwoklog.NewContext(compCtx, kwoklog.NewLogger(logw, kwoklog.LevelWarn))
	compCtx = klog.NewContext(compCtx, klog.Background())
	c.stopComponents = stopComponents

	done, err := startControllers(compCtx, c.Kubeconfig, opts.ClientQPS, opts.ClientBurst)
	if err != nil {
		return c, err
	}
	c.componentsDone = append(c.componentsDone, done)

	schedConfig := filepath.Join(c.Dir, "kubehtc-scheduler.yaml")
	if err := writeSchedulerConfig(schedConfig, opts.SchedulerConfig, c.Kubeconfig, opts.ClientQPS, opts.ClientBurst); err != nil {
		return c, err
	}
	if done, err = startScheduler(compCtx, schedConfig); err != nil {
		return c, err
	}
	c.componentsDone = append(c.componentsDone, done)

	profiles, err := profileNames(opts.SchedulerConfig)
	if err != nil {
		return c, err
	}
	if err := c.startUnservedWarner(compCtx, profiles); err != nil {
		return c, err
	}
	if err := startKWOK(compCtx, c.Kubeconfig, 16, opts.RestartBackOff); err != nil {
		return c, err
	}
	if err := c.createNodes(ctx, opts.NodePools); err != nil {
		return c, err
	}
	if err := c.waitReady(ctx, opts.NodePools.TotalNodes()); err != nil {
		return c, err
	}
	if opts.RealNodes > 0 {
		if c.realNodes, err = realnode.Start(compCtx, realnode.Options{Dir: filepath.Join(c.Dir, "realnodes"),
			Kubeconfig: c.Kubeconfig, Count: opts.RealNodes, Verbosity: opts.Verbosity}); err != nil {
			return c, fmt.Errorf("real nodes: %w", err)
		}
		if err := c.waitReady(ctx, opts.NodePools.TotalNodes()+opts.RealNodes); err != nil {
			return c, fmt.Errorf("real nodes: %w\n%s", err, c.realNodes.LogTail(c.realNodes.Nodes[0].Name+"-kubelet", 20))
		}
	}
	for _, comp := range opts.Components {
		if err := comp.Start(compCtx, c); err != nil {
			return c, fmt.Errorf("starting %s: %w", comp.Name, err)
		}
	}
	c.StartupDuration = time.Since(begin)
	return c, nil
}

// RESTConfig returns a copy of the superuser client config (protobuf for built-in types). Use
// JSONRESTConfig for custom resources.
func (c *Cluster) RESTConfig() *rest.Config { return rest.CopyConfig(c.restConfig) }

// JSONRESTConfig returns a copy of the client config that speaks JSON, which CRD clients need
// (pitfall 4 of ARCHITECTURE.md).
func (c *Cluster) JSONRESTConfig() *rest.Config {
	cfg := rest.CopyConfig(c.restConfig)
	cfg.ContentType = "application/json"
	cfg.AcceptContentTypes = "application/json"
	return cfg
}

// RealNodes returns the running real nodes (Options.RealNodes), nil when there are none.
func (c *Cluster) RealNodes() *realnode.Nodes { return c.realNodes }

// Client returns a typed client of the cluster.
func (c *Cluster) Client() kubernetes.Interface { return c.client }

// Go runs f in a goroutine that Stop waits for (after cancelling the components' context). Components use it
// for their long-running loops.
func (c *Cluster) Go(f func()) {
	c.goroutines.Add(1)
	go func() {
		defer c.goroutines.Done()
		f()
	}()
}

// Stop shuts the cluster down: KWOK, scheduler and controllers first, then the apiserver, then etcd, then
// the temporary directory. It waits for each; calling it again is a no-op that returns the first result.
func (c *Cluster) Stop() error {
	c.stopOnce.Do(func() {
		var errs []error
		// Real nodes first: their kubelets still report to the apiserver while they stop their pods.
		if c.realNodes != nil {
			errs = append(errs, c.realNodes.Stop())
		}
		if c.stopComponents != nil {
			c.stopComponents()
		}
		componentsStopped := make(chan struct{})
		go func() { c.goroutines.Wait(); close(componentsStopped) }()
		select {
		case <-componentsStopped:
		case <-time.After(30 * time.Second):
			errs = append(errs, errors.New("kubehtc components did not stop within 30s"))
		}
		for _, done := range c.componentsDone {
			select {
			case err := <-done:
				if err != nil && !isStopError(err) {
					errs = append(errs, err)
				}
			case <-time.After(30 * time.Second):
				errs = append(errs, errors.New("a component did not stop within 30s"))
			}
		}
		if c.stopAPIServer != nil {
			c.stopAPIServer()
		}
		if c.apiserver != nil {
			select {
			case <-c.apiserver.done:
				if c.apiserver.err != nil && !errors.Is(c.apiserver.err, context.Canceled) {
					errs = append(errs, fmt.Errorf("kube-apiserver: %w", c.apiserver.err))
				}
			case <-time.After(60 * time.Second):
				errs = append(errs, errors.New("kube-apiserver did not stop within 60s"))
			}
		}
		if c.etcd != nil {
			c.etcd.Close()
		}
		klog.Flush()
		if c.logFile != nil {
			klog.SetOutput(io.Discard)
			errs = append(errs, c.logFile.Close())
		}
		if c.removeDir {
			errs = append(errs, os.RemoveAll(c.Dir))
		}
		c.stopErr = errors.Join(errs...)
	})
	return c.stopErr
}

// isStopError tells errors that only say a component stopped because it was asked to.
func isStopError(err error) bool {
	// kube-scheduler's Run returns this when its context ends and leader election is off.
	return errors.Is(err, context.Canceled) || strings.Contains(err.Error(), "finished without leader elect")
}

func (c *Cluster) createNodes(ctx context.Context, pools NodePoolsConfig) error {
	nodes := pools.Nodes()
	errs := make(chan error, len(nodes))
	sem := make(chan struct{}, 32)
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			if _, err := c.client.CoreV1().Nodes().Create(ctx, n, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
				errs <- fmt.Errorf("creating node %s: %w", n.Name, err)
			}
		}()
	}
	wg.Wait()
	close(errs)
	return errors.Join(collect(errs)...)
}

func collect(ch <-chan error) []error {
	var out []error
	for err := range ch {
		out = append(out, err)
	}
	return out
}

// waitReady waits until want nodes are Ready (KWOK has initialised them) and the default ServiceAccount
// exists (the ServiceAccount admission plugin rejects pods before that).
func (c *Cluster) waitReady(ctx context.Context, want int) error {
	var ready int
	err := wait.PollUntilContextTimeout(ctx, 100*time.Millisecond, 5*time.Minute, true, func(ctx context.Context) (bool, error) {
		nodes, err := c.client.CoreV1().Nodes().List(ctx, metav1.ListOptions{ResourceVersion: "0"})
		if err != nil {
			return false, nil
		}
		ready = 0
		for i := range nodes.Items {
			if NodeReady(&nodes.Items[i]) {
				ready++
			}
		}
		if ready < want {
			return false, nil
		}
		_, err = c.client.CoreV1().ServiceAccounts(metav1.NamespaceDefault).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	if err != nil {
		return fmt.Errorf("waiting for %d nodes to be Ready (%d are) and the default ServiceAccount: %w", want, ready, err)
	}
	return nil
}

// NodeReady reports whether the node's Ready condition is True.
func NodeReady(n *corev1.Node) bool {
	for _, cond := range n.Status.Conditions {
		if cond.Type == corev1.NodeReady {
			return cond.Status == corev1.ConditionTrue
		}
	}
	return false
}

// writeKubeconfig writes a kubeconfig for the apiserver's loopback superuser credentials. The loopback
// serving certificate is issued for the name apiserver-loopback-client, hence tls-server-name.
func writeKubeconfig(path string, cfg *rest.Config) error {
	kc := clientcmdapi.NewConfig()
	kc.Clusters["kubehtc-local"] = &clientcmdapi.Cluster{
		Server:                   cfg.Host,
		CertificateAuthorityData: cfg.TLSClientConfig.CAData,
		TLSServerName:            cfg.TLSClientConfig.ServerName,
	}
	kc.AuthInfos["kubehtc-admin"] = &clientcmdapi.AuthInfo{Token: cfg.BearerToken}
	kc.Contexts["kubehtc-local"] = &clientcmdapi.Context{Cluster: "kubehtc-local", AuthInfo: "kubehtc-admin", Namespace: metav1.NamespaceDefault}
	kc.CurrentContext = "kubehtc-local"
	if err := clientcmd.WriteToFile(*kc, path); err != nil {
		return fmt.Errorf("writing kubeconfig: %w", err)
	}
	return os.Chmod(path, 0o600)
}

// redirectKlog sends klog (every Kubernetes component logs through it) to w at verbosity v.
func redirectKlog(w io.Writer, v int) error {
	fs := flag.NewFlagSet("klog", flag.ContinueOnError)
	klog.InitFlags(fs)
	for k, val := range map[string]string{"logtostderr": "false", "alsologtostderr": "false", "stderrthreshold": "FATAL", "v": strconv.Itoa(v)} {
		if err := fs.Set(k, val); err != nil {
			return err
		}
	}
	klog.SetOutput(w)
	return nil
}
