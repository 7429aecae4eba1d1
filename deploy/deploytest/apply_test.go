package deploytest

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	apiextensionsv1 "k8s.io/apiextensions-apiserver/pkg/apis/apiextensions/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	"k8s.io/apimachinery/pkg/api/meta"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/client-go/discovery"
	"k8s.io/client-go/discovery/cached/memory"
	"k8s.io/client-go/dynamic"
	"k8s.io/client-go/restmapper"

	"github.com/kubehtc/kubehtc/internal/localcluster"
	"github.com/kubehtc/kubehtc/internal/localcluster/clustertest"
)

var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(clustertest.Main(m, localcluster.Options{}, &cluster)) }

const fieldManager = "kubehtc-deploytest"

// optionalGroups are API groups of objects the chart renders only when asked (serviceMonitor.enabled,
// cert-manager certificates) and whose CRDs the local cluster does not have: such objects are reported, not
// applied.
var optionalGroups = []string{"monitoring.coreos.com", "cert-manager.io"}

// dryRunKinds are applied with dryRun=All: their controllers would start containers (whose images do not
// exist here) or call a webhook Service that nothing serves.
var dryRunKinds = []string{"Deployment", "DaemonSet", "CSIDriver", "MutatingWebhookConfiguration"}

// rendering is one way a site installs kubehtc.
type rendering struct {
	name   string
	render func() ([]byte, error)
	// components are the binaries whose RBAC the rendering carries.
	components []string
}

func renderings() []rendering {
	kust := filepath.Join(Root(), "deploy", "kustomize")
	return []rendering{
		{"kustomize base", func() ([]byte, error) { return Kustomize(filepath.Join(kust, "base")) }, []string{"scheduler", "controller"}},
		{"chart defaults", func() ([]byte, error) { return RenderChart("--include-crds") }, []string{"scheduler", "controller"}},
		{"chart all components", func() ([]byte, error) { return RenderChart("--include-crds", "-f", AllComponentsValues()) }, []string{"scheduler", "controller", "controller-vo-credentials", "gateway", "csi"}},
		{"chart replacing the default scheduler", func() ([]byte, error) { return RenderChart("--include-crds", "--set", "scheduler.mode=replace") }, []string{"scheduler-replace"}},
		{"kustomize cern-like overlay", func() ([]byte, error) { return Kustomize(filepath.Join(kust, "overlays", "cern-like")) }, []string{"scheduler", "controller", "gateway", "csi"}},
	}
}

// TestApplyServerSide applies every object of each rendering to the local cluster's API server with
// server-side apply (CRDs and Namespaces first, as Helm does), then checks that the RBAC it carries allows
// what each binary does and no more (rbac_test.go).
func TestApplyServerSide(t *testing.T) {
	c := clustertest.Require(t, cluster)
	releaseNamespace(t, c)
	for _, r := range renderings() {
		t.Run(r.name, func(t *testing.T) {
			out, err := r.render()
			if err != nil {
				t.Fatal(err)
			}
			objs, err := Decode(out)
			if err != nil {
				t.Fatal(err)
			}
			applied, skipped := apply(t, c, objs)
			t.Logf("%d objects accepted (%d of them dry-run), %d not applied (CRD absent here): %v", applied, countDryRun(objs), len(skipped), skipped)
			for _, comp := range r.components {
				checkRBAC(t, c, comp)
			}
		})
	}
}

// releaseNamespace creates the release namespace (helm install --create-namespace) unless it exists. It
// stays for the other tests of this binary (the cluster goes with the binary).
func releaseNamespace(t *testing.T, c *localcluster.Cluster) {
	t.Helper()
	ns := &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: Namespace}}
	if _, err := c.Client().CoreV1().Namespaces().Create(context.Background(), ns, metav1.CreateOptions{}); err != nil && !apierrors.IsAlreadyExists(err) {
		t.Fatalf("creating namespace %s: %v", Namespace, err)
	}
}

func countDryRun(objs []*unstructured.Unstructured) int {
	n := 0
	for _, o := range objs {
		if slices.Contains(dryRunKinds, o.GetKind()) {
			n++
		}
	}
	return n
}

// apply server-side applies objs: CRDs (waiting until established), Namespaces, then the rest. It returns how
// many objects the API server accepted and which it could not be given because their API group is optional
// and absent. Any other refusal fails the test.
func apply(t *testing.T, c *localcluster.Cluster, objs []*unstructured.Unstructured) (int, []string) {
	t.Helper()
	ctx := context.Background()
	cfg := c.RESTConfig()
	dyn, err := dynamic.NewForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	dc, err := discovery.NewDiscoveryClientForConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	mapper := restmapper.NewDeferredDiscoveryRESTMapper(memory.NewMemCacheClient(dc))
	rank := func(o *unstructured.Unstructured) int {
		switch o.GetKind() {
		case "CustomResourceDefinition":
			return 0
		case "Namespace":
			return 1
		}
		return 2
	}
	sorted := slices.Clone(objs)
	slices.SortStableFunc(sorted, func(a, b *unstructured.Unstructured) int { return rank(a) - rank(b) })

	applied := 0
	var skipped []string
	crdsDone := false
	for _, o := range sorted {
		if !crdsDone && rank(o) > 0 {
			crdsDone = true
			waitEstablished(t, dyn, sorted)
			mapper.Reset()
		}
		gvk := o.GroupVersionKind()
		id := gvk.Kind + " " + o.GetNamespace() + "/" + o.GetName()
		m, err := mapper.RESTMapping(gvk.GroupKind(), gvk.Version)
		if meta.IsNoMatchError(err) && slices.Contains(optionalGroups, gvk.Group) {
			skipped = append(skipped, id)
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", id, err)
			continue
		}
		var ri dynamic.ResourceInterface = dyn.Resource(m.Resource)
		if m.Scope.Name() == meta.RESTScopeNameNamespace {
			if o.GetNamespace() == "" {
				t.Errorf("%s: namespaced object without a namespace", id)
				continue
			}
			ri = dyn.Resource(m.Resource).Namespace(o.GetNamespace())
		}
		data, err := json.Marshal(o.Object)
		if err != nil {
			t.Fatal(err)
		}
		opts := metav1.PatchOptions{FieldManager: fieldManager, Force: new(true)}
		if slices.Contains(dryRunKinds, gvk.Kind) {
			opts.DryRun = []string{metav1.DryRunAll}
		}
		if _, err := ri.Patch(ctx, o.GetName(), types.ApplyPatchType, data, opts); err != nil {
			t.Errorf("%s refused by the API server: %v", id, err)
			continue
		}
		applied++
	}
	return applied, skipped
}

// waitEstablished waits until every CRD among objs is Established.
func waitEstablished(t *testing.T, dyn dynamic.Interface, objs []*unstructured.Unstructured) {
	t.Helper()
	crds := apiextensionsv1.SchemeGroupVersion.WithResource("customresourcedefinitions")
	for _, o := range objs {
		if o.GetKind() != "CustomResourceDefinition" {
			continue
		}
		name := o.GetName()
		clustertest.Poll(t, time.Minute, func(ctx context.Context) (bool, error) {
			u, err := dyn.Resource(crds).Get(ctx, name, metav1.GetOptions{})
			if err != nil {
				return false, err
			}
			conds, _, _ := unstructured.NestedSlice(u.Object, "status", "conditions")
			for _, c := range conds {
				m, _ := c.(map[string]any)
				if m["type"] == string(apiextensionsv1.Established) && m["status"] == "True" {
					return true, nil
				}
			}
			return false, nil
		})
	}
}

// serviceAccountUser is the user name of a ServiceAccount of the release.
func serviceAccountUser(name string) string {
	return "system:serviceaccount:" + Namespace + ":" + name
}

// serviceAccountGroups are the groups a ServiceAccount token authenticates with.
var serviceAccountGroups = []string{"system:serviceaccounts", "system:serviceaccounts:" + Namespace, "system:authenticated"}
