// Package realnode runs real worker nodes next to the local cluster's simulated (KWOK) ones: per node a
// kubelet built from the k8s.io/kubernetes version the control plane embeds, a containerd with its own root,
// state, sockets and runc root, the Debian CNI plugins (bridge, host-local, loopback) with a bridge of its own,
// and a cgroup subtree of its own. Pods scheduled onto a real node run real containers; images come from a
// local registry (Debian's docker-registry) that Start fills with a busybox image and the sandbox ("pause")
// image, both built without a container engine.
//
// Every process runs as a child of the caller (kubelet and containerd in their own process groups; the runc
// shims daemonize), and Stop removes what the nodes made on the host: pod sandboxes (through the CRI, which
// tears down their network namespaces and veths), the shims, the bridges, the cgroups, and every mount under
// the nodes' directory. Leftovers reports what remains, for tests.
//
// Real nodes need root, cgroups (v1 or v2) and the Debian packages hack/ensure-realnode-deps.sh installs;
// Check reports what is missing.
package realnode
