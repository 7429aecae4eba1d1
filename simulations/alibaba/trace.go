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
	"slices"
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

// WholeGPUs is what the pod requests from Kubernetes: fractional shares round up to one GPU (num_gpu is 1 for
// them), whole-GPU pods ask for num_gpu.
func (p Pod) WholeGPUs() int64 { return p.GPUs }

// MilliGPUs is the pod's GPU demand as the ATC'23 paper counts it: num_gpu × gpu_milli.
func (p Pod) MilliGPUs() int64 { return p.GPUs * p.GPUMilli }

// Columns of the openb lists. A list may carry its columns in any order and more than these; the required
// ones must be there. Pod lists come in two layouts: the full one (with gpu_spec, qos, phase and times) and a
// 5-column one (name,cpu_milli,memory_mib,num_gpu,gpu_milli) whose rows are already in arrival order.
var (
	nodeRequired = []string{"sn", "cpu_milli", "memory_mib", "gpu"}
	nodeOptional = []string{"model"}
	podRequired  = []string{"name", "cpu_milli", "memory_mib", "num_gpu", "gpu_milli"}
	podOptional  = []string{"gpu_spec", "creation_time"}
)

// ParseNodes reads a node list. A malformed row is an error naming its line and field; nothing is guessed.
func ParseNodes(r io.Reader) ([]Node, error) {
	var out []Node
	err := readCSV(r, nodeRequired, nodeOptional, func(f row) error {
		n := Node{Name: f.get("sn"), Model: f.get("model")}
		var err error
		if n.MilliCPU, err = positive(f.get("cpu_milli"), "cpu_milli"); err != nil {
			return err
		}
		if n.MemoryMiB, err = positive(f.get("memory_mib"), "memory_mib"); err != nil {
			return err
		}
		if n.GPUs, err = nonNegative(f.get("gpu"), "gpu"); err != nil {
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

// ParsePods reads a pod list in either layout. With a creation_time column the pods are returned in creation
// order (stable for equal times); without one, in file order, which is then their arrival order.
func ParsePods(r io.Reader) ([]Pod, error) {
	var (
		out   []Pod
		timed bool
	)
	err := readCSV(r, podRequired, podOptional, func(f row) error {
		p := Pod{Name: f.get("name")}
		var err error
		if p.MilliCPU, err = nonNegative(f.get("cpu_milli"), "cpu_milli"); err != nil {
			return err
		}
		if p.MemoryMiB, err = nonNegative(f.get("memory_mib"), "memory_mib"); err != nil {
			return err
		}
		if p.GPUs, err = nonNegative(f.get("num_gpu"), "num_gpu"); err != nil {
			return err
		}
		if p.GPUMilli, err = nonNegative(f.get("gpu_milli"), "gpu_milli"); err != nil {
			return err
		}
		if f.has("creation_time") {
			timed = true
			if p.Creation, err = nonNegative(f.get("creation_time"), "creation_time"); err != nil {
				return err
			}
		}
		if spec := f.get("gpu_spec"); spec != "" {
			p.Models = strings.Split(spec, "|")
		}
		if p.Name == "" {
			return errors.New("name: empty")
		}
		out = append(out, p)
		return nil
	})
	if timed {
		sort.SliceStable(out, func(i, j int) bool { return out[i].Creation < out[j].Creation })
	}
	return out, err
}

// row is one record with its header's column positions.
type row struct {
	col    map[string]int
	fields []string
}

func (r row) has(name string) bool { _, ok := r.col[name]; return ok }

// get returns the named column, or "" when the list has no such column.
func (r row) get(name string) string {
	if i, ok := r.col[name]; ok {
		return r.fields[i]
	}
	return ""
}

// readCSV reads the header, checks that every required column is there (the error names the missing ones and
// the required set), and calls fn for each record with 1-based line numbers in errors.
func readCSV(r io.Reader, required, optional []string, fn func(row) error) error {
	cr := csv.NewReader(r)
	cr.ReuseRecord = true
	header, err := cr.Read()
	if err != nil {
		return fmt.Errorf("reading header: %w", err)
	}
	col := map[string]int{}
	for i, name := range header {
		name = strings.TrimSpace(strings.TrimPrefix(name, "\ufeff"))
		if _, dup := col[name]; dup {
			return fmt.Errorf("header: column %q appears twice", name)
		}
		if slices.Contains(required, name) || slices.Contains(optional, name) {
			col[name] = i
		}
	}
	var missing []string
	for _, name := range required {
		if _, ok := col[name]; !ok {
			missing = append(missing, name)
		}
	}
	if len(missing) > 0 {
		return fmt.Errorf("header %q: missing column(s) %s; required: %s (optional: %s)",
			strings.Join(header, ","), strings.Join(missing, ","), strings.Join(required, ","), strings.Join(optional, ","))
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
		if err := fn(row{col: col, fields: f}); err != nil {
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
