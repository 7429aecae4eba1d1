package webhook_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"flag"
	"fmt"
	"math/big"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	admissionregistrationv1 "k8s.io/api/admissionregistration/v1"
	corev1 "k8s.io/api/core/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/util/wait"
	"k8s.io/client-go/kubernetes"
	"sigs.k8s.io/yaml"

	"github.com/kubehtc/kubehtc/csi/inject"
	csiwebhook "github.com/kubehtc/kubehtc/csi/webhook"
	"github.com/kubehtc/kubehtc/internal/controllermanager"
	"github.com/kubehtc/kubehtc/internal/localcluster"
)

// cluster is the one local cluster of this test binary (Kubernetes components are process-global).
var cluster *localcluster.Cluster

func TestMain(m *testing.M) { os.Exit(run(m)) }

func run(m *testing.M) int {
	flag.Parse()
	if testing.Short() {
		return m.Run()
	}
	var err error
	if cluster, err = localcluster.Start(context.Background(), localcluster.Options{}); err != nil {
		fmt.Fprintln(os.Stderr, "starting the local cluster:", err)
		return 1
	}
	code := m.Run()
	if err := cluster.Stop(); err != nil {
		fmt.Fprintln(os.Stderr, "stopping the local cluster:", err)
		return 1
	}
	return code
}

// TestMountInjection runs kubehtc-controller's manager (with the CSI setup) serving the webhook on
// 127.0.0.1, registers deploy/csi/webhook.yaml pointed at it, and creates pods.
func TestMountInjection(t *testing.T) {
	if cluster == nil {
		t.Skip("integration test: needs the local cluster (not started with -short)")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cs := cluster.Client()

	certDir := t.TempDir()
	caPEM := writeServingCert(t, certDir)
	port := freePort(t)
	mgr, err := controllermanager.New(cluster.JSONRESTConfig(), controllermanager.Options{
		MetricsAddr: "0", HealthAddr: "0", WebhookHost: "127.0.0.1", WebhookPort: port, WebhookCertDir: certDir,
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- mgr.Start(ctx) }()
	defer func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("manager: %v", err)
		}
	}()
	started := mgr.GetWebhookServer().StartedChecker()
	poll(t, "webhook server", func(context.Context) (bool, error) { return started(nil) == nil, nil })

	cfg := loadWebhookConfig(t)
	url := fmt.Sprintf("https://127.0.0.1:%d%s", port, *cfg.Webhooks[0].ClientConfig.Service.Path)
	if !strings.HasSuffix(url, csiwebhook.Path) {
		t.Fatalf("deploy/csi/webhook.yaml path %s is not the served path %s", url, csiwebhook.Path)
	}
	cfg.Webhooks[0].ClientConfig = admissionregistrationv1.WebhookClientConfig{URL: &url, CABundle: caPEM}
	if _, err := cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Create(ctx, cfg, metav1.CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cs.AdmissionregistrationV1().MutatingWebhookConfigurations().Delete(context.Background(), cfg.Name, metav1.DeleteOptions{})
	}()
	ns := newNamespace(t, cs)

	// The apiserver picks the configuration up asynchronously: dry-run until it mutates.
	annotated := testPod("annotated", map[string]string{inject.CVMFSAnnotation: "atlas.cern.ch, sft.cern.ch", inject.EOSAnnotation: "/eos/atlas"})
	poll(t, "the webhook to be active", func(ctx context.Context) (bool, error) {
		p, err := cs.CoreV1().Pods(ns).Create(ctx, annotated.DeepCopy(), metav1.CreateOptions{DryRun: []string{metav1.DryRunAll}})
		return err == nil && len(csiVolumes(p)) > 0, nil
	})

	t.Run("annotated pod gets volumes and HostToContainer mounts", func(t *testing.T) {
		p, err := cs.CoreV1().Pods(ns).Create(ctx, annotated.DeepCopy(), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		vols := csiVolumes(p)
		want := map[string]string{"/cvmfs/atlas.cern.ch": inject.DefaultCVMFSDriver, "/cvmfs/sft.cern.ch": inject.DefaultCVMFSDriver, "/eos/atlas": inject.DefaultEOSDriver}
		for _, c := range append(p.Spec.InitContainers, p.Spec.Containers...) {
			got := map[string]string{}
			for _, m := range c.VolumeMounts {
				v, ok := vols[m.Name]
				if !ok {
					continue
				}
				if !m.ReadOnly || m.MountPropagation == nil || *m.MountPropagation != corev1.MountPropagationHostToContainer {
					t.Errorf("container %s: mount %s: readOnly %t, propagation %v", c.Name, m.MountPath, m.ReadOnly, m.MountPropagation)
				}
				if v.ReadOnly == nil || !*v.ReadOnly {
					t.Errorf("volume %s is not read-only", m.Name)
				}
				got[m.MountPath] = v.Driver
			}
			if fmt.Sprint(got) != fmt.Sprint(want) {
				t.Errorf("container %s mounts %v, want %v", c.Name, got, want)
			}
		}
	})
	t.Run("unannotated pod is untouched", func(t *testing.T) {
		p, err := cs.CoreV1().Pods(ns).Create(ctx, testPod("plain", map[string]string{"other": "x"}), metav1.CreateOptions{})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range p.Spec.Volumes {
			if v.CSI != nil || strings.HasPrefix(v.Name, inject.VolumePrefix) {
				t.Errorf("unannotated pod got volume %s", v.Name)
			}
		}
	})
	t.Run("bad annotation is rejected with the reason", func(t *testing.T) {
		_, err := cs.CoreV1().Pods(ns).Create(ctx, testPod("bad", map[string]string{inject.CVMFSAnnotation: "atlas.cern.ch/../../etc"}), metav1.CreateOptions{})
		if err == nil || !strings.Contains(err.Error(), "denied the request") || !strings.Contains(err.Error(), "lower-case DNS name") {
			t.Errorf("error = %v, want a denial saying what is wrong with the repository", err)
		}
	})
}

func testPod(name string, ann map[string]string) *corev1.Pod {
	return &corev1.Pod{
		ObjectMeta: metav1.ObjectMeta{Name: name, Annotations: ann},
		Spec: corev1.PodSpec{
			InitContainers: []corev1.Container{{Name: "setup", Image: "busybox"}},
			Containers:     []corev1.Container{{Name: "pilot", Image: "busybox"}, {Name: "sidecar", Image: "busybox"}},
		},
	}
}

func csiVolumes(p *corev1.Pod) map[string]*corev1.CSIVolumeSource {
	out := map[string]*corev1.CSIVolumeSource{}
	for _, v := range p.Spec.Volumes {
		if v.CSI != nil {
			out[v.Name] = v.CSI
		}
	}
	return out
}

func loadWebhookConfig(t *testing.T) *admissionregistrationv1.MutatingWebhookConfiguration {
	t.Helper()
	data, err := os.ReadFile(filepath.Join("..", "..", "deploy", "csi", "webhook.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var cfg admissionregistrationv1.MutatingWebhookConfiguration
	if err := yaml.UnmarshalStrict(data, &cfg); err != nil {
		t.Fatal(err)
	}
	if len(cfg.Webhooks) != 1 || cfg.Webhooks[0].ClientConfig.Service == nil || cfg.Webhooks[0].ClientConfig.Service.Path == nil {
		t.Fatalf("deploy/csi/webhook.yaml: want one webhook with a service path")
	}
	return &cfg
}

// writeServingCert writes a self-signed certificate for 127.0.0.1 as tls.crt/tls.key and returns it
// (PEM) for the caBundle.
func writeServingCert(t *testing.T, dir string) []byte {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "kubehtc-webhook-test"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, IsCA: true, BasicConstraintsValid: true,
		KeyUsage:    x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	if err := os.WriteFile(filepath.Join(dir, "tls.crt"), certPEM, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "tls.key"), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}), 0o600); err != nil {
		t.Fatal(err)
	}
	return certPEM
}

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

func newNamespace(t *testing.T, cs kubernetes.Interface) string {
	t.Helper()
	ns, err := cs.CoreV1().Namespaces().Create(context.Background(), &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{GenerateName: "csi-"}}, metav1.CreateOptions{})
	if err != nil {
		t.Fatal(err)
	}
	poll(t, "default ServiceAccount", func(ctx context.Context) (bool, error) {
		_, err := cs.CoreV1().ServiceAccounts(ns.Name).Get(ctx, "default", metav1.GetOptions{})
		return err == nil, nil
	})
	t.Cleanup(func() { _ = cs.CoreV1().Namespaces().Delete(context.Background(), ns.Name, metav1.DeleteOptions{}) })
	return ns.Name
}

// poll waits for cond; the bound only keeps a broken run from hanging, it asserts no speed.
func poll(t *testing.T, what string, cond wait.ConditionWithContextFunc) {
	t.Helper()
	if err := wait.PollUntilContextTimeout(context.Background(), 100*time.Millisecond, 2*time.Minute, true, cond); err != nil {
		t.Fatalf("waiting for %s: %v", what, err)
	}
}
