// Command kubehtc-csi is kubehtc's CSI node plugin (and minimal controller) for CVMFS repositories and EOS
// paths; see csi/driver and docs/csi.md.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"

	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/client-go/tools/clientcmd"
	"k8s.io/klog/v2"

	"github.com/kubehtc/kubehtc/csi/driver"
	"github.com/kubehtc/kubehtc/csi/telemetry"
)

func main() {
	klog.InitFlags(nil)
	endpoint := flag.String("endpoint", "unix:///csi/csi.sock", "CSI endpoint (unix socket)")
	configFile := flag.String("config", "/etc/kubehtc-csi/config.yaml", "driver configuration (YAML, see docs/csi.md)")
	nodeName := flag.String("node-name", os.Getenv("NODE_NAME"), "Kubernetes node name (the CSI node ID)")
	kubeconfig := flag.String("kubeconfig", "", "kubeconfig for node telemetry; empty: in-cluster configuration")
	interval := flag.Duration("telemetry-interval", telemetry.DefaultInterval, "how often to annotate the node with the mounted repositories (0 disables)")
	flag.Parse()
	if err := run(*endpoint, *configFile, *nodeName, *kubeconfig, *interval); err != nil {
		klog.ErrorS(err, "kubehtc-csi")
		os.Exit(1)
	}
}

func run(endpoint, configFile, nodeName, kubeconfig string, interval time.Duration) error {
	cfg, err := driver.LoadConfig(configFile)
	if err != nil {
		return err
	}
	d, err := driver.New(cfg, driver.Options{NodeID: nodeName})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if interval > 0 {
		client, err := newClient(kubeconfig)
		if err != nil {
			return fmt.Errorf("node telemetry: %w", err)
		}
		r := &telemetry.Reporter{Client: client, NodeName: nodeName, List: d.Mounted, Interval: interval}
		go r.Run(ctx)
	}
	l, err := driver.Listen(endpoint)
	if err != nil {
		return err
	}
	go func() {
		<-ctx.Done()
		d.Stop() // mounts stay: pods keep their software while the plugin restarts
	}()
	return d.Serve(l)
}

func newClient(kubeconfig string) (kubernetes.Interface, error) {
	var cfg *rest.Config
	var err error
	if kubeconfig != "" {
		cfg, err = clientcmd.BuildConfigFromFlags("", kubeconfig)
	} else {
		cfg, err = rest.InClusterConfig()
	}
	if err != nil {
		return nil, err
	}
	return kubernetes.NewForConfig(cfg)
}
