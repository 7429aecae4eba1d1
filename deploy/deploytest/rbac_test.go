package deploytest

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	authorizationv1 "k8s.io/api/authorization/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
)

// op is one API operation: "verb group/resource[/subresource] namespace/name" with empty parts omitted.
type op struct {
	verb, group, resource, subresource, namespace, name string
}

func (o op) String() string {
	r := o.resource
	if o.subresource != "" {
		r += "/" + o.subresource
	}
	if o.group != "" {
		r = o.group + "/" + r
	}
	return fmt.Sprintf("%s %s %s/%s", o.verb, r, o.namespace, o.name)
}

// ops expands verbs over one resource.
func ops(group, resource, subresource, namespace, name string, verbs ...string) []op {
	out := make([]op, 0, len(verbs))
	for _, v := range verbs {
		out = append(out, op{v, group, resource, subresource, namespace, name})
	}
	return out
}

func join(lists ...[]op) []op {
	var out []op
	for _, l := range lists {
		out = append(out, l...)
	}
	return out
}

// access lists, per binary, what it does (allowed; read from the code, see the chart's RBAC comments) and
// operations a least-privilege role must not grant (denied).
type access struct {
	serviceAccount  string
	allowed, denied []op
}

var accessOf = map[string]access{
	// kube-scheduler's own work (system:kube-scheduler, system:volume-scheduler), delegated authentication of its
	// secure port, and kubehtc's plugins: PodGroups (Gang), Queues (QueueOrder, FairShare), pods/status (FairShare
	// reclaim marks victims), namespaces (fair-share users), its own lease.
	"scheduler": {
		serviceAccount: "kubehtc-scheduler",
		allowed: join(
			ops("", "pods", "", "", "", "get", "list", "watch", "delete"),
			ops("", "pods", "binding", "vo-atlas", "p", "create"),
			ops("", "pods", "status", "vo-atlas", "p", "patch", "update"),
			ops("", "nodes", "", "", "", "get", "list", "watch"),
			ops("", "namespaces", "", "", "", "list", "watch"),
			ops("", "persistentvolumeclaims", "", "", "", "list", "watch"),
			ops("", "persistentvolumes", "", "", "", "list", "watch"),
			ops("", "services", "", "", "", "list", "watch"),
			ops("apps", "replicasets", "", "", "", "list", "watch"),
			ops("apps", "statefulsets", "", "", "", "list", "watch"),
			ops("policy", "poddisruptionbudgets", "", "", "", "list", "watch"),
			ops("storage.k8s.io", "csinodes", "", "", "", "list", "watch"),
			ops("storage.k8s.io", "storageclasses", "", "", "", "list", "watch"),
			ops("storage.k8s.io", "csidrivers", "", "", "", "list", "watch"),
			ops("storage.k8s.io", "csistoragecapacities", "", "", "", "list", "watch"),
			ops("events.k8s.io", "events", "", "vo-atlas", "", "create", "patch"),
			ops("scheduling.x-k8s.io", "podgroups", "", "", "", "get", "list", "watch"),
			ops("kubehtc.io", "queues", "", "", "", "get", "list", "watch"),
			ops("coordination.k8s.io", "leases", "", Namespace, "", "create"),
			ops("coordination.k8s.io", "leases", "", Namespace, "kubehtc-scheduler", "get", "update"),
			ops("authentication.k8s.io", "tokenreviews", "", "", "", "create"),
			ops("authorization.k8s.io", "subjectaccessreviews", "", "", "", "create"),
			ops("", "configmaps", "", "kube-system", "extension-apiserver-authentication", "get"),
		),
		denied: join(
			ops("", "secrets", "", "kube-system", "", "get", "list"),
			ops("", "pods", "", "vo-atlas", "", "create"),
			ops("", "nodes", "", "", "n", "delete"),
			ops("kubehtc.io", "queues", "status", "", "root", "patch"),
			ops("scheduling.x-k8s.io", "podgroups", "", "vo-atlas", "", "create"),
			ops("rbac.authorization.k8s.io", "clusterrolebindings", "", "", "", "create"),
			ops("*", "*", "", "", "", "*"),
		),
	},
	// internal/controllermanager: GridJob, PodGroup status and gang eviction, quota accounting, leader election.
	"controller": {
		serviceAccount: "kubehtc-controller",
		allowed: join(
			ops("kubehtc.io", "gridjobs", "", "", "", "get", "list", "watch"),
			ops("kubehtc.io", "gridjobs", "status", "vo-atlas", "j", "update"),
			ops("", "pods", "", "", "", "get", "list", "watch"),
			ops("", "pods", "", "vo-atlas", "", "create", "delete"),
			ops("", "pods", "status", "vo-atlas", "p", "patch"),
			ops("", "configmaps", "", "", "", "get", "list", "watch"),
			ops("", "secrets", "", "vo-atlas", "credential", "get"),
			ops("scheduling.x-k8s.io", "podgroups", "", "", "", "get", "list", "watch"),
			ops("scheduling.x-k8s.io", "podgroups", "status", "vo-atlas", "g", "patch"),
			ops("kubehtc.io", "queues", "", "", "", "get", "list", "watch"),
			ops("kubehtc.io", "queues", "status", "", "root", "patch"),
			ops("", "namespaces", "", "", "", "list", "watch"),
			ops("", "nodes", "", "", "", "list", "watch"),
			ops("events.k8s.io", "events", "", "vo-atlas", "", "create", "patch"),
			ops("coordination.k8s.io", "leases", "", Namespace, "", "create"),
			ops("coordination.k8s.io", "leases", "", Namespace, "kubehtc-controller", "get", "update"),
		),
		denied: join(
			ops("", "secrets", "", "vo-atlas", "", "list", "create", "delete"),
			ops("", "pods", "", "vo-atlas", "p", "update", "patch"),
			ops("", "nodes", "", "", "n", "patch", "delete"),
			ops("kubehtc.io", "gridjobs", "", "vo-atlas", "j", "delete", "patch"),
			ops("kubehtc.io", "queues", "", "", "root", "delete", "update"),
			ops("coordination.k8s.io", "leases", "", Namespace, "kubehtc-scheduler", "update"),
			ops("rbac.authorization.k8s.io", "clusterrolebindings", "", "", "", "create"),
			ops("*", "*", "", "", "", "*"),
		),
	},
	// As the default scheduler's replacement it holds the stock scheduler's lease in kube-system.
	"scheduler-replace": {
		serviceAccount: "kubehtc-scheduler",
		allowed: join(
			ops("coordination.k8s.io", "leases", "", "kube-system", "kube-scheduler", "get", "update"),
			ops("scheduling.x-k8s.io", "podgroups", "", "", "", "list", "watch"),
			ops("kubehtc.io", "queues", "", "", "", "list", "watch"),
		),
		denied: join(
			ops("coordination.k8s.io", "leases", "", "kube-system", "kube-controller-manager", "update"),
			ops("*", "*", "", "", "", "*"),
		),
	},
	// With gateway VOs in the values the controller reads credential Secrets only in VO namespaces.
	"controller-vo-credentials": {
		serviceAccount: "kubehtc-controller",
		allowed:        ops("", "secrets", "", "vo-cms", "credential", "get"),
		denied:         ops("", "secrets", "", "kube-system", "credential", "get"),
	},
	// gridgateway/server and gridgateway/arcrest, in each VO namespace; GLUE2 lists nodes and running pods.
	"gateway": {
		serviceAccount: "kubehtc-gateway",
		allowed: join(
			ops("kubehtc.io", "gridjobs", "", "vo-atlas", "", "create", "get", "list", "watch", "patch", "delete"),
			ops("", "secrets", "", "vo-cms", "", "create", "get", "list", "patch", "delete"),
			ops("", "configmaps", "", "vo-lhcb", "", "create", "get", "patch"),
			ops("", "pods", "log", "vo-atlas", "p", "get"),
			ops("", "nodes", "", "", "", "list"),
			ops("", "pods", "", "", "", "list"),
		),
		denied: join(
			ops("kubehtc.io", "gridjobs", "", "kube-system", "", "create"),
			ops("kubehtc.io", "gridjobs", "status", "vo-atlas", "j", "update"),
			ops("", "secrets", "", "kube-system", "", "get", "list"),
			ops("", "secrets", "", Namespace, "", "get"),
			ops("", "pods", "", "vo-atlas", "", "create", "delete"),
			ops("", "nodes", "", "", "n", "get", "patch"),
			ops("*", "*", "", "", "", "*"),
		),
	},
	// csi/telemetry: annotates its own Node.
	"csi": {
		serviceAccount: "kubehtc-csi-node",
		allowed:        ops("", "nodes", "", "", "worker-1", "get", "patch"),
		denied: join(
			ops("", "nodes", "", "", "worker-1", "delete", "update"),
			ops("", "pods", "", "", "", "list"),
			ops("", "secrets", "", "vo-atlas", "", "get"),
			ops("*", "*", "", "", "", "*"),
		),
	},
}

// checkRBAC asks the API server (SubjectAccessReview, the RBAC authorizer that serves the binary's requests)
// whether the ServiceAccount of component may do each of its operations, and may not do the denied ones.
func checkRBAC(t *testing.T, c *localcluster.Cluster, component string) {
	t.Helper()
	a, ok := accessOf[component]
	if !ok {
		t.Fatalf("no access list for %s", component)
	}
	cs := c.Client()
	user := serviceAccountUser(a.serviceAccount)
	// The authorizer sees new bindings through its informers: wait until it allows everything once.
	var refused []string
	clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
		refused = refused[:0]
		for _, o := range a.allowed {
			ok, err := allowed(ctx, cs, user, o)
			if err != nil {
				return false, err
			}
			if !ok {
				refused = append(refused, o.String())
			}
		}
		if len(refused) > 0 {
			t.Logf("%s: waiting for RBAC, refused: %s", component, strings.Join(refused, "; "))
		}
		return len(refused) == 0, nil
	})
	for _, o := range a.denied {
		ok, err := allowed(context.Background(), cs, user, o)
		if err != nil {
			t.Fatal(err)
		}
		if ok {
			t.Errorf("%s (%s) may %s: more than it needs", component, a.serviceAccount, o)
		}
	}
	t.Logf("%s: %d operations allowed, %d denied as they should be", component, len(a.allowed), len(a.denied))
}

func allowed(ctx context.Context, cs kubernetes.Interface, user string, o op) (bool, error) {
	sar := &authorizationv1.SubjectAccessReview{Spec: authorizationv1.SubjectAccessReviewSpec{
		User:   user,
		Groups: serviceAccountGroups,
		ResourceAttributes: &authorizationv1.ResourceAttributes{
			Verb: o.verb, Group: o.group, Resource: o.resource, Subresource: o.subresource,
			Namespace: o.namespace, Name: o.name,
		},
	}}
	res, err := cs.AuthorizationV1().SubjectAccessReviews().Create(ctx, sar, metav1.CreateOptions{})
	if err != nil {
		return false, fmt.Errorf("subject access review %s: %w", o, err)
	}
	return res.Status.Allowed, nil
}
