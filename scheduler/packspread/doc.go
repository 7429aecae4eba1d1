// Package packspread is the PackSpread score plugin: it packs or spreads each pod according to its workload
// class, in one profile.
//
// The stock scheduler spreads everything (LeastAllocated). On a shared site that fragments nodes: whole-node
// and multi-core jobs starve, and CPU jobs scattered over GPU nodes keep 8-GPU training jobs from starting.
// Web services, though, must stay spread for availability. Other systems choose pack or spread per scheduler,
// profile or partition; PackSpread chooses per pod:
//
//   - batch: most-allocated over cpu/memory (weighted): the node the pod fills best wins, so free capacity
//     stays concentrated on few nodes;
//   - service: least-allocated, plus a strong preference for nodes and zones with no replica of the same
//     owner;
//   - gpu: best fit on GPUs — the node where the pod leaves the fewest free GPUs behind wins, so free GPUs stay
//     together for large requests;
//   - any pod that requests no GPU loses GPUNodePenalty percent of its score on GPU nodes: it goes there only
//     when no CPU node fits.
//
// The class comes from the kubehtc.io/class label or is inferred (see PackSpreadArgs). The plugin also
// exports how fragmented the free GPUs are (kubehtc_gpu_fragmented_gpus), measured by GPUFragmentation.
package packspread
