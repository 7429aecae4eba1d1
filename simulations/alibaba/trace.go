// Package alibaba reads the Alibaba GPU cluster trace "openb" (cluster-trace-gpu-v2023; Weng et al., "Beware
// of Fragmentation: Scheduling GPU-Sharing Workloads with Fragmentation Gradient Descent", USENIX ATC 2023)
// and turns it into local-cluster node pools and pods.
//
// Kubernetes allocates whole GPUs: a pod with a fractional share (gpu_milli < 1000) requests one whole GPU here.
package alibaba

import (
	"encoding/csv"
	"errors"
	"fmt"
	"io"
	"sort"
	"strconv"
	"strings"

	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// Node is one row of openb_node_list_*.csv: sn,cpu_milli,memory_mib,gpu,model.
type Node struct {
	Name      string
	MilliCPU  int64
	MemoryMiB int64
	GPUs      int64
	Model     string
}

// Pod is one row of openb_pod_list_*.csv:
// name,cpu_milli,memory_mib,num_gpu,gpu_milli,gpu_spec,qos,pod_phase,creation_time,deletion_time,scheduled_time.
type Pod struct {
	Name      string
	MilliCPU  int64
	MemoryMiB int64
	// GPUs is num_gpu; GPUMilli < 1000 with GPUs == 1 is a fractional share.
	GPUs     int64
	GPUMilli int64
	// Models are the GPU models the pod accepts (gpu_spec split on "|"); empty means any.
	Models   []string
	Creation int64
}

// WholeGPUs is what the pod requests from Kubernetes: fractional shares round up to one GPU.
func (p Pod) WholeGPUs() int64 { return p.GPUs }

var (
	nodeHeader = []string{"sn", "cpu_milli", "memory_mib", "gpu", "model"}
	podHeader  = []string{"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli", "gpu_spec", "qos", "pod_phase", "creation_time", "deletion_time", "scheduled_time"}
)

// ParseNodes reads a node list. A malformed row is an error naming its line; nothing is guessed.
func ParseNodes(r io.Reader) ([]Node, error) {
	var out []Node
	err := readCSV(r, nodeHeader, func(line int, f []string) error {
		n := Node{Name: f[0], Model: f[4]}
		var err error
		if n.MilliCPU, err = positive(f[1], "cpu_milli"); err != nil {
			return err
		}
		if n.MemoryMiB, err = positive(f[2], "memory_mib"); err != nil {
			return err
		}
		if n.GPUs, err = nonNegative(f[3], "gpu"); err != nil {
			return err
		}
		if n.Name == "" {
			return errors.New("sn: empty")
		}
		if n.GPUs > 0 && n.Model == "" {
			return errors.New("model: empty for a GPU node")
		}
		out = append(out, n)
		return nil
	})
	return out, err
}

// ParsePods reads a pod list and returns the pods in creation order (stable for equal times).
func ParsePods(r io.Reader) ([]Pod, error) {
	var out []Pod
	err := readCSV(r, podHeader, func(line int, f []string) error {
		p := Pod{Name: f[0]}
		var err error
		if p.MilliCPU, err = nonNegative(f[1], "cpu_milli"); err != nil {
			return err
		}
		if p.MemoryMiB, err = nonNegative(f[2], "memory_mib"); err != nil {
			return err
		}
		if p.GPUs, err = nonNegative(f[3], "num_gpu"); err != nil {
			return err
		}
		if p.GPUMilli, err = nonNegative(f[4], "gpu_milli"); err != nil {
			return err
		}
		if p.Creation, err = nonNegative(f[8], "creation_time"); err != nil {
			return err
		}
		if f[5] != "" {
			p.Models = strings.Split(f[5], "|")
		}
		if p.Name == "" {
			return errors.New("name: empty")
		}
		out = append(out, p)
		return nil
	})
	sort.SliceStable(out, func(i, j int) bool { return out[i].Creation < out[j].Creation })
	return out, err
}

func readCSV(r io.Reader, header []string, row func(line int, f []string) error) error {
	cr := csv.NewReader(r)
	cr.FieldsPerRecord = len(header)
	cr.ReuseRecord = true
	got, err := cr.Read()
	if err != nil {
		return fmt.Errorf("reading header: %w", err)
	}
	if strings.Join(got, ",") != strings.Join(header, ",") {
		return fmt.Errorf("header %q, want %q", strings.Join(got, ","), strings.Join(header, ","))
	}
	for {
		f, err := cr.Read()
		if err == io.EOF {
			return nil
		}
		line, _ := cr.FieldPos(0)
		if err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
		if err := row(line, f); err != nil {
			return fmt.Errorf("line %d: %w", line, err)
		}
	}
}

func nonNegative(s, field string) (int64, error) {
	v, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		return 0, fmt.Errorf("%s: %q is not an integer", field, s)
	}
	if v < 0 {
		return 0, fmt.Errorf("%s: %d is negative", field, v)
	}
	return v, nil
}

func positive(s, field string) (int64, error) {
	v, err := nonNegative(s, field)
	if err == nil && v == 0 {
		err = fmt.Errorf("%s: must be positive", field)
	}
	return v, err
}

// NodePools groups identical nodes into local-cluster pools (names openb-0, openb-1, ...). The trace's node
// names are not kept: the replay only needs the capacities.
func NodePools(nodes []Node) localcluster.NodePoolsConfig {
	type key struct {
		cpu, mem, gpus int64
		model          string
	}
	index := map[key]int{}
	var cfg localcluster.NodePoolsConfig
	for _, n := range nodes {
		k := key{n.MilliCPU, n.MemoryMiB, n.GPUs, n.Model}
		i, ok := index[k]
		if !ok {
			i = len(cfg.Pools)
			index[k] = i
			cfg.Pools = append(cfg.Pools, localcluster.NodePool{
				Name:     fmt.Sprintf("openb-%d", i),
				CPU:      fmt.Sprintf("%dm", n.MilliCPU),
				Memory:   fmt.Sprintf("%dMi", n.MemoryMiB),
				GPUs:     int(n.GPUs),
				GPUModel: n.Model,
			})
		}
		cfg.Pools[i].Count++
	}
	return cfg
}
