package deploytest

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"sigs.k8s.io/yaml"

	"github.com/kubehtc/kubehtc/gridgateway/config"
)

// ids returns "Kind namespace/name" of every object, sorted.
func ids(objs []*unstructured.Unstructured) []string {
	out := make([]string, 0, len(objs))
	for _, o := range objs {
		out = append(out, o.GetKind()+" "+o.GetNamespace()+"/"+o.GetName())
	}
	slices.Sort(out)
	return out
}

func render(t *testing.T, args ...string) []*unstructured.Unstructured {
	t.Helper()
	out, err := RenderChart(args...)
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	return objs
}

// TestChartComponents renders the chart with components switched on and off and checks which workloads,
// PodDisruptionBudgets and ServiceMonitors a site gets.
func TestChartComponents(t *testing.T) {
	cases := []struct {
		name string
		args []string
		// want are the objects that must be rendered; absent those that must not.
		want, absent []string
	}{{
		name: "defaults: scheduler and controller with its webhook, certificate from cert-manager",
		want: []string{
			"Deployment kubehtc-system/kubehtc-scheduler", "Deployment kubehtc-system/kubehtc-controller",
			"PodDisruptionBudget kubehtc-system/kubehtc-scheduler", "PodDisruptionBudget kubehtc-system/kubehtc-controller",
			"PriorityClass /kubehtc-services", "PriorityClass /kubehtc-batch", "PriorityClass /kubehtc-opportunistic",
			"MutatingWebhookConfiguration /kubehtc-mount-injection", "Certificate kubehtc-system/kubehtc-controller-webhook",
			"Issuer kubehtc-system/kubehtc-controller-selfsigned", "Role kubehtc-system/kubehtc-scheduler-leader-election",
		},
		absent: []string{
			"Deployment kubehtc-system/kubehtc-gateway", "DaemonSet kubehtc-system/kubehtc-csi-node",
			"DaemonSet kubehtc-system/kubehtc-snapshotter", "ServiceMonitor kubehtc-system/kubehtc-scheduler",
			"Queue /root",
		},
	}, {
		name: "all components of a CERN-like site",
		args: []string{"-f", AllComponentsValues()},
		want: []string{
			"Deployment kubehtc-system/kubehtc-scheduler", "Deployment kubehtc-system/kubehtc-controller",
			"Deployment kubehtc-system/kubehtc-gateway", "DaemonSet kubehtc-system/kubehtc-csi-node",
			"DaemonSet kubehtc-system/kubehtc-snapshotter", "CSIDriver /csi.kubehtc.io",
			"PodDisruptionBudget kubehtc-system/kubehtc-gateway",
			"ServiceMonitor kubehtc-system/kubehtc-scheduler", "ServiceMonitor kubehtc-system/kubehtc-controller",
			"ServiceMonitor kubehtc-system/kubehtc-gateway", "Service kubehtc-system/kubehtc-gateway",
			"Role vo-atlas/kubehtc-gateway", "Role vo-cms/kubehtc-gateway", "Role vo-lhcb/kubehtc-gateway",
			"Role vo-atlas/kubehtc-controller-credentials",
			"Queue /root", "Queue /atlas", "Namespace /vo-atlas",
		},
		absent: []string{"Certificate kubehtc-system/kubehtc-controller-webhook", "Issuer kubehtc-system/kubehtc-controller-selfsigned"},
	}, {
		name:   "replace the default scheduler: its lease in kube-system, no lease Role of its own",
		args:   []string{"--set", "scheduler.mode=replace"},
		want:   []string{"Deployment kubehtc-system/kubehtc-scheduler"},
		absent: []string{"Role kubehtc-system/kubehtc-scheduler-leader-election"},
	}, {
		name: "everything off but the PriorityClasses",
		args: []string{"--set", "scheduler.enabled=false,controller.enabled=false"},
		want: []string{"PriorityClass /kubehtc-batch"},
		absent: []string{
			"Deployment kubehtc-system/kubehtc-scheduler", "Deployment kubehtc-system/kubehtc-controller",
			"MutatingWebhookConfiguration /kubehtc-mount-injection",
		},
	}, {
		name:   "one replica: no PodDisruptionBudget (it would block every drain)",
		args:   []string{"--set", "scheduler.replicas=1"},
		want:   []string{"PodDisruptionBudget kubehtc-system/kubehtc-controller"},
		absent: []string{"PodDisruptionBudget kubehtc-system/kubehtc-scheduler"},
	}}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got := ids(render(t, tc.args...))
			var missing, present []string
			for _, w := range tc.want {
				if !slices.Contains(got, w) {
					missing = append(missing, w)
				}
			}
			for _, a := range tc.absent {
				if slices.Contains(got, a) {
					present = append(present, a)
				}
			}
			if len(missing)+len(present) > 0 {
				t.Errorf("missing %v, unexpected %v; rendered:\n%s", missing, present, strings.Join(got, "\n"))
			}
		})
	}
}

// TestChartRefusesIncompleteValues: values that would install something broken fail at render time.
func TestChartRefusesIncompleteValues(t *testing.T) {
	cases := []struct {
		name, set, want string
	}{
		{"unknown scheduler mode", "scheduler.mode=primary", "scheduler.mode must be secondary or replace"},
		{"gateway without a certificate", "gateway.enabled=true,gateway.site.vos[0].name=atlas,gateway.site.vos[0].namespace=atlas", "gateway needs tls.secretName or tls.certManager.enabled"},
		{"gateway without VOs", "gateway.enabled=true,gateway.tls.secretName=x", "gateway.site.vos is empty"},
		{"webhook without a certificate", "controller.webhook.certManager.enabled=false", "controller.webhook needs certManager.enabled or certSecret"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := RenderChart("--set", tc.set)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("want an error containing %q, got %v", tc.want, err)
			}
		})
	}
}

// TestCRDsComeFromTheGeneratedFolder: the chart's crds/ and the kustomize base install exactly the files of
// deploy/crds, byte for byte, so a `make generate` reaches every install path.
func TestCRDsComeFromTheGeneratedFolder(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(Root(), "deploy", "crds", "*.yaml"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no CRDs in deploy/crds: %v", err)
	}
	want := map[string]map[string]any{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		objs, err := Decode(b)
		if err != nil || len(objs) != 1 {
			t.Fatalf("%s: %d objects, %v", f, len(objs), err)
		}
		want[objs[0].GetName()] = objs[0].Object
	}
	got := map[string]map[string]any{}
	for _, o := range render(t, "--include-crds", "--set", "scheduler.enabled=false,controller.enabled=false,priorityClasses.create=false") {
		if o.GetKind() == "CustomResourceDefinition" {
			got[o.GetName()] = o.Object
		}
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("chart CRDs differ from deploy/crds (-want,+got):\n%s", d)
	}
	kustCRDs := map[string]map[string]any{}
	out, err := Kustomize(filepath.Join(Root(), "deploy", "kustomize", "base"))
	if err != nil {
		t.Fatal(err)
	}
	objs, err := Decode(out)
	if err != nil {
		t.Fatal(err)
	}
	for _, o := range objs {
		if o.GetKind() == "CustomResourceDefinition" {
			kustCRDs[o.GetName()] = o.Object
		}
	}
	if d := cmp.Diff(want, kustCRDs); d != "" {
		t.Errorf("kustomize base CRDs differ from deploy/crds (-want,+got):\n%s", d)
	}

	var kust struct {
		Resources []string `json:"resources"`
	}
	b, err := os.ReadFile(filepath.Join(Root(), "deploy", "crds", "kustomization.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, &kust); err != nil {
		t.Fatal(err)
	}
	var names []string
	for _, f := range files {
		names = append(names, filepath.Base(f))
	}
	slices.Sort(kust.Resources)
	if d := cmp.Diff(names, kust.Resources); d != "" {
		t.Errorf("deploy/crds/kustomization.yml does not list every CRD file (-want,+got):\n%s", d)
	}
}

// TestKustomizeTreeIsUpToDate runs hack/manifests.sh into a copy of the kustomize tree and compares the
// generated files with the committed ones: the kustomize install is the chart's objects.
func TestKustomizeTreeIsUpToDate(t *testing.T) {
	if _, err := Helm(); err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	root := filepath.Join(tmp, "kustomize")
	gen, err := filepath.Glob(filepath.Join(Root(), "deploy", "kustomize", "*", "generated.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	more, _ := filepath.Glob(filepath.Join(Root(), "deploy", "kustomize", "*", "*", "generated.yaml"))
	gen = append(gen, more...)
	if len(gen) != 4 {
		t.Fatalf("want 4 generated files in deploy/kustomize, found %v", gen)
	}
	cmd := exec.Command(filepath.Join(Root(), "hack", "manifests.sh"), filepath.Join(tmp, "out"))
	cmd.Env = append(os.Environ(), "KUSTOMIZE_ROOT="+root, "MANIFESTS_SKIP_RENDER=1")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("hack/manifests.sh: %v\n%s", err, out)
	}
	for _, f := range gen {
		rel, _ := filepath.Rel(filepath.Join(Root(), "deploy", "kustomize"), f)
		want, err := os.ReadFile(filepath.Join(root, rel))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(want, got) {
			t.Errorf("deploy/kustomize/%s is out of date with the chart (or scheduler/kubehtc-scheduler-config.yaml, which the chart links): run make manifests and commit it (-want,+got):\n%s", rel, cmp.Diff(string(want), string(got)))
		}
	}
}

// TestShippedManifestsAgree: the chart installs the same CSI driver, mount-injection registration and
// snapshotter configuration as the standalone manifests of deploy/csi and deploy/snapshotter (which the CSI
// and snapshotter tests exercise).
func TestShippedManifestsAgree(t *testing.T) {
	objs := render(t, "-f", AllComponentsValues())
	standalone := func(dir string) []*unstructured.Unstructured {
		files, _ := filepath.Glob(filepath.Join(Root(), "deploy", dir, "*.yaml"))
		var all []*unstructured.Unstructured
		for _, f := range files {
			if filepath.Base(f) == "site.yaml" { // the snapshotter's site settings, not an object
				continue
			}
			b, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			o, err := Decode(b)
			if err != nil {
				t.Fatalf("%s: %v", f, err)
			}
			all = append(all, o...)
		}
		return all
	}
	csi, snap := standalone("csi"), standalone("snapshotter")
	fields := []struct {
		name      string
		want, got *unstructured.Unstructured
		path      []string
	}{
		{"CSIDriver spec", Find(csi, "CSIDriver", "csi.kubehtc.io"), Find(objs, "CSIDriver", "csi.kubehtc.io"), []string{"spec"}},
		{"webhook", Find(csi, "MutatingWebhookConfiguration", "kubehtc-mount-injection"), Find(objs, "MutatingWebhookConfiguration", "kubehtc-mount-injection"), []string{"webhooks"}},
		{"csi node ClusterRole", Find(csi, "ClusterRole", "kubehtc-csi-node"), Find(objs, "ClusterRole", "kubehtc-csi-node"), []string{"rules"}},
		{"snapshotter files", Find(snap, "ConfigMap", "kubehtc-snapshotter-node"), Find(objs, "ConfigMap", "kubehtc-snapshotter-node"), []string{"data"}},
		{"snapshotter pod security", Find(snap, "DaemonSet", "kubehtc-snapshotter"), Find(objs, "DaemonSet", "kubehtc-snapshotter"), []string{"spec", "template", "spec", "automountServiceAccountToken"}},
	}
	for _, f := range fields {
		if f.want == nil || f.got == nil {
			t.Errorf("%s: object missing (standalone %v, chart %v)", f.name, f.want != nil, f.got != nil)
			continue
		}
		w, _, _ := unstructured.NestedFieldNoCopy(f.want.Object, f.path...)
		g, _, _ := unstructured.NestedFieldNoCopy(f.got.Object, f.path...)
		if f.name == "webhook" {
			// The chart names its own Service and namespace; everything else must match.
			for _, wh := range []any{w, g} {
				for _, h := range wh.([]any) {
					unstructured.RemoveNestedField(h.(map[string]any), "clientConfig", "service", "name")
					unstructured.RemoveNestedField(h.(map[string]any), "clientConfig", "service", "namespace")
				}
			}
		}
		if d := cmp.Diff(w, g); d != "" {
			t.Errorf("%s differs between deploy/ and the chart (-standalone,+chart):\n%s", f.name, d)
		}
	}
}

// TestGatewaySiteConfiguration: the gateway's site.yaml that the chart renders is accepted by the gateway's
// own loader, and the gateway has a Role in each VO namespace it names and nowhere else.
func TestGatewaySiteConfiguration(t *testing.T) {
	objs := render(t, "-f", AllComponentsValues())
	data, err := ConfigMapData(objs, "kubehtc-gateway-site", "site.yaml")
	if err != nil {
		t.Fatal(err)
	}
	site, err := config.Parse([]byte(data))
	if err != nil {
		t.Fatalf("the gateway would not start: %v", err)
	}
	var want, got []string
	for _, vo := range site.VOs {
		want = append(want, vo.Namespace)
	}
	for _, o := range objs {
		if o.GetKind() == "Role" && o.GetName() == "kubehtc-gateway" {
			got = append(got, o.GetNamespace())
		}
	}
	slices.Sort(want)
	slices.Sort(got)
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("gateway Roles by namespace (-VO namespaces,+Roles):\n%s", d)
	}
}

// TestPackagedChartIsSelfContained packages the chart (what a chart repository serves: helm package copies the
// linked CRDs and files) and checks that the package renders exactly what the chart directory renders.
func TestPackagedChartIsSelfContained(t *testing.T) {
	helm, err := Helm()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if out, err := exec.Command(helm, "package", Chart(), "-d", dir).CombinedOutput(); err != nil {
		t.Fatalf("helm package: %v\n%s", err, out)
	}
	pkgs, _ := filepath.Glob(filepath.Join(dir, "kubehtc-*.tgz"))
	if len(pkgs) != 1 {
		t.Fatalf("want one package, found %v", pkgs)
	}
	args := []string{"--namespace", Namespace, "--include-crds", "-f", AllComponentsValues()}
	fromPackage, err := exec.Command(helm, append([]string{"template", Release, pkgs[0]}, args...)...).Output()
	if err != nil {
		t.Fatalf("helm template of the package: %v", err)
	}
	fromDir, err := RenderChart(args[2:]...)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Decode(fromDir)
	if err != nil {
		t.Fatal(err)
	}
	got, err := Decode(fromPackage)
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(want, got); d != "" {
		t.Errorf("the packaged chart renders differently (-directory,+package):\n%s", d)
	}
}
