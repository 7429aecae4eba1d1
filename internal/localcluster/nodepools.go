package localcluster

import (
	"errors"
	"fmt"
	"os"
	"strings"

	corev1 "k8s.io/api/core/v1"
	"k8s.io/apimachinery/pkg/api/resource"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/validation"
	"sigs.k8s.io/yaml"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
)

// Labels set on every simulated node.
const (
	// PoolLabel names the node pool a node belongs to.
	PoolLabel = kubehtcv1alpha1.PoolLabel
	// ZoneLabel is the well-known topology zone label.
	ZoneLabel = corev1.LabelTopologyZone
	// GPUModelLabel carries the GPU model of GPU nodes (the label NVIDIA's GPU feature discovery sets).
	GPUModelLabel = kubehtcv1alpha1.GPUModelLabel
	// GPUResource is the extended resource GPU nodes advertise.
	GPUResource = kubehtcv1alpha1.GPUResource
	// kwokNodeAnnotation marks nodes that KWOK manages.
	kwokNodeAnnotation = "kwok.x-k8s.io/node"
)

// NodePoolsConfig is the node-pool file given to `kubehtc up --nodes-config`.
//
//	pools:
//	- name: cpu-a
//	  count: 4
//	  cpu: "32"
//	  memory: 128Gi
//	  zone: zone-a
type NodePoolsConfig struct {
	// Pools are the node groups of the cluster; node names are <pool>-<index>.
	Pools []NodePool `json:"pools"`
}

// NodePool is a group of identical simulated nodes.
type NodePool struct {
	// Name of the pool; a DNS-1123 label. Nodes are named <name>-<index>.
	Name string `json:"name"`
	// Count of nodes in the pool; at least 1.
	Count int `json:"count"`
	// CPU capacity of each node, as a Kubernetes quantity ("32", "64000m").
	CPU string `json:"cpu"`
	// Memory capacity of each node ("128Gi").
	Memory string `json:"memory"`
	// Pods is the maximum number of pods per node; default 110.
	Pods int `json:"pods,omitempty"`
	// Zone is the topology.kubernetes.io/zone label value; optional.
	Zone string `json:"zone,omitempty"`
	// GPUs per node (nvidia.com/gpu); 0 for CPU nodes.
	GPUs int `json:"gpus,omitempty"`
	// GPUModel is the nvidia.com/gpu.product label value; required when GPUs > 0.
	GPUModel string `json:"gpuModel,omitempty"`
	// Labels are extra node labels.
	Labels map[string]string `json:"labels,omitempty"`
}

// DefaultPodsPerNode is the kubelet's default max-pods.
const DefaultPodsPerNode = 110

// MaxNodesPerPool bounds a pool's count: a simulated node costs the control plane memory and watch traffic,
// and a typo (count: 1000000) should be an error, not an out-of-memory.
const MaxNodesPerPool = 20000

// DefaultNodePools is a small mixed site: CPU pools in three zones and a GPU nodegroup.
func DefaultNodePools() NodePoolsConfig {
	return NodePoolsConfig{Pools: []NodePool{
		{Name: "cpu-a", Count: 4, CPU: "32", Memory: "128Gi", Zone: "zone-a"},
		{Name: "cpu-b", Count: 4, CPU: "32", Memory: "128Gi", Zone: "zone-b"},
		{Name: "cpu-c", Count: 4, CPU: "32", Memory: "128Gi", Zone: "zone-c"},
		{Name: "gpu", Count: 2, CPU: "64", Memory: "512Gi", Zone: "zone-a", GPUs: 8, GPUModel: "NVIDIA-A100-SXM4-80GB"},
	}}
}

// UniformNodePools is one CPU pool of n identical nodes, spread over three zones by index; benchmarks use it.
func UniformNodePools(n int, cpu, memory string) NodePoolsConfig {
	cfg := NodePoolsConfig{}
	zones := []string{"zone-a", "zone-b", "zone-c"}
	per := n / len(zones)
	for i, z := range zones {
		c := per
		if i < n%len(zones) {
			c++
		}
		if c == 0 {
			continue
		}
		cfg.Pools = append(cfg.Pools, NodePool{Name: "node-" + z[len(z)-1:], Count: c, CPU: cpu, Memory: memory, Zone: z})
	}
	return cfg
}

// LoadNodePools reads and validates a node-pool file.
func LoadNodePools(path string) (NodePoolsConfig, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return NodePoolsConfig{}, fmt.Errorf("reading node pools: %w", err)
	}
	cfg, err := ParseNodePools(data)
	if err != nil {
		return NodePoolsConfig{}, fmt.Errorf("%s: %w", path, err)
	}
	return cfg, nil
}

// ParseNodePools parses node-pool YAML or JSON strictly (unknown fields are errors) and validates it.
func ParseNodePools(data []byte) (NodePoolsConfig, error) {
	var cfg NodePoolsConfig
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		return NodePoolsConfig{}, fmt.Errorf("parsing node pools: %w", err)
	}
	if err := cfg.Validate(); err != nil {
		return NodePoolsConfig{}, err
	}
	return cfg, nil
}

// Validate reports every problem of the config, each naming its field (pools[i].field).
func (c NodePoolsConfig) Validate() error {
	var errs []error
	if len(c.Pools) == 0 {
		errs = append(errs, errors.New("pools: at least one pool is required"))
	}
	seen := map[string]int{}
	for i, p := range c.Pools {
		f := func(field string) string { return fmt.Sprintf("pools[%d].%s", i, field) }
		if msgs := validation.IsDNS1123Label(p.Name); len(msgs) > 0 {
			errs = append(errs, fmt.Errorf("%s: %q is not a valid pool name: %s", f("name"), p.Name, strings.Join(msgs, "; ")))
		} else if j, dup := seen[p.Name]; dup {
			errs = append(errs, fmt.Errorf("%s: %q is already the name of pools[%d]", f("name"), p.Name, j))
		}
		seen[p.Name] = i
		if p.Count < 1 || p.Count > MaxNodesPerPool {
			errs = append(errs, fmt.Errorf("%s: must be between 1 and %d, got %d", f("count"), MaxNodesPerPool, p.Count))
		}
		errs = append(errs, validatePositiveQuantity(f("cpu"), p.CPU), validatePositiveQuantity(f("memory"), p.Memory))
		if p.Pods < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %d", f("pods"), p.Pods))
		}
		if p.Zone != "" {
			if msgs := validation.IsValidLabelValue(p.Zone); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a valid label value: %s", f("zone"), p.Zone, strings.Join(msgs, "; ")))
			}
		}
		if p.GPUs < 0 {
			errs = append(errs, fmt.Errorf("%s: must not be negative, got %d", f("gpus"), p.GPUs))
		}
		if p.GPUs > 0 && p.GPUModel == "" {
			errs = append(errs, fmt.Errorf("%s: required when gpus > 0", f("gpuModel")))
		}
		if p.GPUModel != "" {
			if msgs := validation.IsValidLabelValue(p.GPUModel); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("%s: %q is not a valid label value: %s", f("gpuModel"), p.GPUModel, strings.Join(msgs, "; ")))
			}
		}
		for k, v := range p.Labels {
			if msgs := validation.IsQualifiedName(k); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("%s: key %q: %s", f("labels"), k, strings.Join(msgs, "; ")))
			}
			if msgs := validation.IsValidLabelValue(v); len(msgs) > 0 {
				errs = append(errs, fmt.Errorf("%s[%s]: value %q: %s", f("labels"), k, v, strings.Join(msgs, "; ")))
			}
		}
	}
	return errors.Join(errs...)
}

func validatePositiveQuantity(field, s string) error {
	if s == "" {
		return fmt.Errorf("%s: required", field)
	}
	q, err := resource.ParseQuantity(s)
	if err != nil {
		return fmt.Errorf("%s: %q is not a quantity: %w", field, s, err)
	}
	if q.Sign() <= 0 {
		return fmt.Errorf("%s: must be positive, got %q", field, s)
	}
	return nil
}

// TotalNodes is the number of nodes the config describes.
func (c NodePoolsConfig) TotalNodes() int {
	n := 0
	for _, p := range c.Pools {
		n += p.Count
	}
	return n
}

// Nodes builds the Node objects of a validated config.
func (c NodePoolsConfig) Nodes() []*corev1.Node {
	nodes := make([]*corev1.Node, 0, c.TotalNodes())
	for _, p := range c.Pools {
		pods := p.Pods
		if pods == 0 {
			pods = DefaultPodsPerNode
		}
		capacity := corev1.ResourceList{
			corev1.ResourceCPU:    resource.MustParse(p.CPU),
			corev1.ResourceMemory: resource.MustParse(p.Memory),
			corev1.ResourcePods:   *resource.NewQuantity(int64(pods), resource.DecimalSI),
		}
		if p.GPUs > 0 {
			capacity[GPUResource] = *resource.NewQuantity(int64(p.GPUs), resource.DecimalSI)
		}
		for i := range p.Count {
			name := fmt.Sprintf("%s-%d", p.Name, i)
			labels := map[string]string{
				corev1.LabelHostname:   name,
				corev1.LabelOSStable:   "linux",
				corev1.LabelArchStable: "amd64",
				PoolLabel:              p.Name,
				"type":                 "kwok",
			}
			if p.Zone != "" {
				labels[ZoneLabel] = p.Zone
			}
			if p.GPUModel != "" {
				labels[GPUModelLabel] = p.GPUModel
			}
			for k, v := range p.Labels {
				labels[k] = v
			}
			nodes = append(nodes, &corev1.Node{
				ObjectMeta: metav1.ObjectMeta{
					Name:        name,
					Labels:      labels,
					Annotations: map[string]string{kwokNodeAnnotation: "fake"},
				},
				Status: corev1.NodeStatus{
					Capacity:    capacity,
					Allocatable: capacity.DeepCopy(),
					Phase:       corev1.NodeRunning,
				},
			})
		}
	}
	return nodes
}
