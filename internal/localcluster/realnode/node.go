package realnode

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials/insecure"
	runtimeapi "k8s.io/cri-api/pkg/apis/runtime/v1"
)

// Node is one running real node.
type Node struct {
	// Name is the Kubernetes node name.
	Name string
	// Index is the node's position in Nodes.Nodes.
	Index int
	// Dir holds the node's files.
	Dir string
	// PodCIDR is the range the node's pods get addresses from (host-local IPAM on Bridge).
	PodCIDR string
	// Bridge is the name of the node's pod bridge.
	Bridge string
	// CgroupRoot is the kubelet's --cgroup-root: every pod cgroup of the node is below it.
	CgroupRoot string
	// IP is the node's InternalIP: the bridge's address, the pods' gateway. The kubelet listens on it.
	IP string
	// KubeletPort is the kubelet's HTTPS port on IP (logs, exec).
	KubeletPort int

	set        *Nodes
	containerd *process
	kubelet    *process
}

func (n *Node) path(elem ...string) string { return filepath.Join(append([]string{n.Dir}, elem...)...) }

// ContainerdSocket is the node's containerd (and CRI) socket.
func (n *Node) ContainerdSocket() string { return n.path("containerd", "containerd.sock") }

// KubeletRootDir is the kubelet's --root-dir; CSI drivers register under its plugins_registry.
func (n *Node) KubeletRootDir() string { return n.path("kubelet") }

// PodLogsDir is where the kubelet and containerd keep container logs.
func (n *Node) PodLogsDir() string { return n.path("pod-logs") }

func (n *Node) start(ctx context.Context, pauseImage string) error {
	for _, d := range []string{"containerd", "cni/net.d", "cni/ipam", "certs.d/" + n.set.Registry, "kubelet", "pod-logs", "runc", "volume-plugins"} {
		if err := os.MkdirAll(n.path(d), 0o700); err != nil {
			return err
		}
	}
	if err := createCgroup(n.CgroupRoot); err != nil {
		return err
	}
	if err := n.createBridge(); err != nil {
		return err
	}
	if err := n.writeContainerdConfig(pauseImage); err != nil {
		return err
	}
	var err error
	n.containerd, err = spawn(n.set.logPath(n.Name+"-containerd"), n.set.opts.ContainerdBinary, "--config", n.path("containerd", "config.toml"))
	if err != nil {
		return err
	}
	if err := waitFor(ctx, n.containerd, func() bool { return dialable(n.ContainerdSocket()) }); err != nil {
		return err
	}
	port, err := freePort()
	if err != nil {
		return err
	}
	n.KubeletPort = port
	if err := n.writeKubeletConfig(); err != nil {
		return err
	}
	args := []string{
		"--config=" + n.path("kubelet-config.yaml"),
		"--kubeconfig=" + n.set.opts.Kubeconfig,
		"--root-dir=" + n.KubeletRootDir(),
		"--hostname-override=" + n.Name,
		"--node-ip=" + n.IP,
		"--node-labels=" + KindLabel + "=" + KindReal,
		"--v=" + strconv.Itoa(n.set.opts.Verbosity),
	}
	n.kubelet, err = spawn(n.set.logPath(n.Name+"-kubelet"), n.set.opts.KubeletBinary, args...)
	return err
}

func (n *Node) writeContainerdConfig(pauseImage string) error {
	reg := n.set.Registry
	hosts := fmt.Sprintf("server = %q\n\n[host.%q]\n  capabilities = [\"pull\", \"resolve\"]\n", "http://"+reg, "http://"+reg)
	if err := os.WriteFile(n.path("certs.d", reg, "hosts.toml"), []byte(hosts), 0o600); err != nil {
		return err
	}
	// One network per node: a bridge of its own with host-local addresses from PodCIDR. No IP masquerade:
	// pods reach the host (the node IP is 127.0.0.1 for the apiserver, not for pods) but nothing outside,
	// and no iptables rule is made.
	cni := fmt.Sprintf(`{
  "cniVersion": "0.4.0",
  "name": "kubehtc-%s",
  "plugins": [
    {
      "type": "bridge",
      "bridge": %q,
      "isGateway": true,
      "ipMasq": false,
      "hairpinMode": true,
      "ipam": {"type": "host-local", "ranges": [[{"subnet": %q}]], "dataDir": %q}
    }
  ]
}
`, n.Name, n.Bridge, n.PodCIDR, n.path("cni", "ipam"))
	if err := os.WriteFile(n.path("cni", "net.d", "10-kubehtc.conflist"), []byte(cni), 0o600); err != nil {
		return err
	}
	cd := n.path("containerd")
	cfg := fmt.Sprintf(`version = 2
root = %q
state = %q
disabled_plugins = ["io.containerd.snapshotter.v1.aufs", "io.containerd.snapshotter.v1.btrfs", "io.containerd.snapshotter.v1.devmapper", "io.containerd.snapshotter.v1.zfs", "io.containerd.tracing.processor.v1.otlp", "io.containerd.internal.v1.tracing"]

[grpc]
  address = %q

[ttrpc]
  address = %q

[debug]
  address = %q

[plugins."io.containerd.internal.v1.opt"]
  path = %q

[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
  disable_apparmor = true
  # Without CAP_SYS_RESOURCE (a container, a sandboxed VM) runc cannot lower oom_score_adj below its own
  # ("nsexec: failed to update /proc/self/oom_score_adj: Permission denied"); clamp to containerd's.
  restrict_oom_score_adj = true
  [plugins."io.containerd.grpc.v1.cri".containerd]
    snapshotter = "overlayfs"
    default_runtime_name = "runc"
    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.runc.options]
        BinaryName = "runc"
        Root = %q
        SystemdCgroup = false
  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".registry]
    config_path = %q
`, filepath.Join(cd, "root"), filepath.Join(cd, "state"), n.ContainerdSocket(), n.ContainerdSocket()+".ttrpc",
		filepath.Join(cd, "debug.sock"), filepath.Join(cd, "opt"), pauseImage, n.path("runc"), cniBinDir,
		n.path("cni", "net.d"), n.path("certs.d"))
	return os.WriteFile(filepath.Join(cd, "config.toml"), []byte(cfg), 0o600)
}

// cniBinDir is where Debian's containernetworking-plugins installs the plugins.
const cniBinDir = "/usr/lib/cni"

func (n *Node) writeKubeletConfig() error {
	cfg := fmt.Sprintf(`apiVersion: kubelet.config.k8s.io/v1beta1
kind: KubeletConfiguration
address: %s
port: %d
readOnlyPort: 0
healthzPort: 0
authentication:
  anonymous:
    enabled: true
  webhook:
    enabled: false
authorization:
  mode: AlwaysAllow
containerRuntimeEndpoint: unix://%s
podLogsDirectory: %s
volumePluginDir: %s
cgroupDriver: cgroupfs
cgroupRoot: %s
cgroupsPerQOS: true
%s
failSwapOn: false
# No KUBE-IPTABLES-HINT / KUBE-FIREWALL chains: nothing of the host's firewall is touched.
makeIPTablesUtilChains: false
registerNode: true
maxPods: 32
serializeImagePulls: false
imageGCHighThresholdPercent: 100
imageGCLowThresholdPercent: 99
evictionHard:
  memory.available: "1Mi"
  nodefs.available: "1%%"
  nodefs.inodesFree: "1%%"
  imagefs.available: "1%%"
clusterDNS: []
nodeStatusUpdateFrequency: 5s
nodeStatusReportFrequency: 1m
`, n.IP, n.KubeletPort, n.ContainerdSocket(), n.PodLogsDir(), n.path("volume-plugins"), n.CgroupRoot, cgroupVersionConfig())
	return os.WriteFile(n.path("kubelet-config.yaml"), []byte(cfg), 0o600)
}

// createBridge creates the node's bridge with its gateway address, up. The kubelet refuses a loopback node IP;
// the bridge's address is local (the apiserver reaches the kubelet on it) and private to the node. The CNI
// bridge plugin finds the bridge and its address there.
func (n *Node) createBridge() error {
	for _, args := range [][]string{
		{"link", "add", n.Bridge, "type", "bridge"},
		{"addr", "add", n.IP + "/24", "dev", n.Bridge},
		{"link", "set", n.Bridge, "up"},
	} {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// stop stops the kubelet, then every pod sandbox through the CRI (CNI DEL removes the sandbox's veth,
// network namespace and address), then containerd and the shims, then removes the bridge.
func (n *Node) stop() error {
	var errs []error
	errs = append(errs, n.kubelet.stop())
	n.kubelet = nil
	if n.containerd != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		errs = append(errs, n.removeSandboxes(ctx))
		cancel()
	}
	errs = append(errs, n.containerd.stop())
	n.containerd = nil
	errs = append(errs, killShims(n.ContainerdSocket()))
	errs = append(errs, killCgroupProcs(n.CgroupRoot))
	errs = append(errs, deleteBridge(n.Bridge))
	return errors.Join(errs...)
}

// removeSandboxes stops and removes every pod sandbox of the node's containerd.
func (n *Node) removeSandboxes(ctx context.Context) error {
	conn, err := grpc.NewClient("unix://"+n.ContainerdSocket(), grpc.WithTransportCredentials(insecure.NewCredentials()))
	if err != nil {
		return fmt.Errorf("connecting to the CRI of %s: %w", n.Name, err)
	}
	defer conn.Close()
	rs := runtimeapi.NewRuntimeServiceClient(conn)
	list, err := rs.ListPodSandbox(ctx, &runtimeapi.ListPodSandboxRequest{})
	if err != nil {
		return fmt.Errorf("listing pod sandboxes of %s: %w", n.Name, err)
	}
	var errs []error
	for _, sb := range list.Items {
		if _, err := rs.StopPodSandbox(ctx, &runtimeapi.StopPodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("stopping pod sandbox %s (%s/%s): %w", sb.Id, sb.Metadata.GetNamespace(), sb.Metadata.GetName(), err))
			continue
		}
		if _, err := rs.RemovePodSandbox(ctx, &runtimeapi.RemovePodSandboxRequest{PodSandboxId: sb.Id}); err != nil {
			errs = append(errs, fmt.Errorf("removing pod sandbox %s: %w", sb.Id, err))
		}
	}
	return errors.Join(errs...)
}

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

func dialable(socket string) bool {
	c, err := net.DialTimeout("unix", socket, time.Second)
	if err != nil {
		return false
	}
	c.Close()
	return true
}
