// Package local runs the grid gateway for a local cluster (kubehtc up, demo, benchmarks): a generated
// token issuer, VOs atlas and cms in namespaces of the same names, plaintext gRPC on a loopback port. It
// publishes the address and a token per VO in a Secret, so that clients of the cluster (the demo's pilot
// factory) find the gateway through the Kubernetes API.
package local

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"fmt"
	"net"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"
	"k8s.io/klog/v2"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/config"
	"github.com/kubehtc/kubehtc/gridgateway/grpcapi"
)

const (
	// Namespace and SecretName locate the Secret with the gateway's address and the VOs' tokens.
	Namespace  = "kubehtc-system"
	SecretName = "kubehtc-gateway-local"
	// AddressKey is the Secret key of the gateway address; TokenKeyPrefix+VO of each VO's token.
	AddressKey     = "address"
	TokenKeyPrefix = "token-"
	// Issuer and Audience of the generated tokens.
	Issuer   = "https://issuer.kubehtc.local/"
	Audience = "https://gateway.kubehtc.local"
	// TokenLifetime of the published tokens.
	TokenLifetime = 24 * time.Hour
	// DemoLabel is the label by which `kubehtc demo` finds the objects of its workload (internal/demo); the
	// local queues put it on their Pods, so that pilots show in the demo's progress and summary.
	DemoLabel = kubehtcv1alpha1.DemoPartLabel
)

// VOs served by the local gateway; each VO's namespace has its name, its queue is <vo>-prod.
var VOs = []string{"atlas", "cms"}

// Site returns the local site configuration.
func Site() (*config.Site, error) {
	s := &config.Site{
		Audiences: []string{Audience},
		Issuers:   []config.Issuer{{URL: Issuer, JWKSFile: "generated"}},
		RuntimeEnvironments: []config.RuntimeEnvironment{
			{Name: "APPS/HEP/ATLAS-SITE", CVMFS: []string{"atlas.cern.ch", "atlas-condb.cern.ch", "sft.cern.ch"}},
			{Name: "APPS/HEP/CMS-SITE", CVMFS: []string{"cms.cern.ch", "sft.cern.ch"}},
			{Name: "ENV/PROXY", MountCredential: true},
		},
	}
	for _, vo := range VOs {
		s.VOs = append(s.VOs, config.VO{Name: vo, Namespace: vo, Tokens: []config.TokenRule{{Issuer: Issuer, Group: "/" + vo}}})
		s.Queues = append(s.Queues, config.Queue{Name: vo + "-prod", VOs: []string{vo}, Image: "registry.cern.ch/kubehtc/" + vo + "-pilot:latest", DefaultWallTimeSeconds: 3600,
			PodLabels: map[string]string{DemoLabel: "pilots"}})
	}
	return s, s.Validate()
}

// Gateway is a started local gateway.
type Gateway struct {
	// Address is host:port of the plaintext gRPC endpoint.
	Address string
	// Tokens are a pilot factory token (all compute scopes) per VO.
	Tokens map[string]string
}

// Start starts the gateway on a loopback port (run runs its serving loop, e.g. Cluster.Go) and publishes
// the Secret.
func Start(ctx context.Context, cfg *rest.Config, run func(func())) (*Gateway, error) {
	site, err := Site()
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	pub := jose.JSONWebKey{Key: &key.PublicKey, KeyID: "local-1", Algorithm: string(jose.ES256), Use: "sig"}
	a := auth.NewWithKeys(site, map[string]*jose.JSONWebKeySet{Issuer: {Keys: []jose.JSONWebKey{pub}}})
	lis, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	run(func() {
		if err := grpcapi.Serve(ctx, grpcapi.Config{Site: site, Auth: a, REST: cfg, Listener: lis}); err != nil {
			klog.FromContext(ctx).Error(err, "Local grid gateway stopped")
		}
	})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key, KeyID: "local-1"}}, nil)
	if err != nil {
		return nil, err
	}
	g := &Gateway{Address: lis.Addr().String(), Tokens: map[string]string{}}
	now := time.Now()
	for _, vo := range VOs {
		tok, err := jwt.Signed(signer).Claims(jwt.Claims{
			Issuer: Issuer, Subject: vo + "-pilot-factory", Audience: jwt.Audience{Audience},
			Expiry: jwt.NewNumericDate(now.Add(TokenLifetime)), NotBefore: jwt.NewNumericDate(now.Add(-time.Minute)), IssuedAt: jwt.NewNumericDate(now),
		}).Claims(map[string]any{"wlcg.ver": "1.0", "scope": "compute.create compute.read compute.modify compute.cancel", "wlcg.groups": []string{"/" + vo}}).Serialize()
		if err != nil {
			return nil, err
		}
		g.Tokens[vo] = tok
	}
	if err := publish(ctx, cfg, g); err != nil {
		return nil, err
	}
	return g, nil
}

func publish(ctx context.Context, cfg *rest.Config, g *Gateway) error {
	cs, err := kubernetes.NewForConfig(cfg)
	if err != nil {
		return err
	}
	for _, ns := range append([]string{Namespace}, VOs...) {
		_, err := cs.CoreV1().Namespaces().Create(ctx, &corev1.Namespace{ObjectMeta: metav1.ObjectMeta{Name: ns}}, metav1.CreateOptions{})
		if err != nil && !apierrors.IsAlreadyExists(err) {
			return fmt.Errorf("namespace %s: %w", ns, err)
		}
	}
	sec := &corev1.Secret{ObjectMeta: metav1.ObjectMeta{Name: SecretName, Namespace: Namespace}, StringData: map[string]string{AddressKey: g.Address}}
	for vo, tok := range g.Tokens {
		sec.StringData[TokenKeyPrefix+vo] = tok
	}
	_, err = cs.CoreV1().Secrets(Namespace).Create(ctx, sec, metav1.CreateOptions{})
	if apierrors.IsAlreadyExists(err) {
		_, err = cs.CoreV1().Secrets(Namespace).Update(ctx, sec, metav1.UpdateOptions{})
	}
	return err
}

// Discover reads the published address and tokens.
func Discover(ctx context.Context, cs kubernetes.Interface) (*Gateway, error) {
	sec, err := cs.CoreV1().Secrets(Namespace).Get(ctx, SecretName, metav1.GetOptions{})
	if err != nil {
		return nil, fmt.Errorf("the local grid gateway is not running (secret %s/%s): %w", Namespace, SecretName, err)
	}
	g := &Gateway{Address: string(sec.Data[AddressKey]), Tokens: map[string]string{}}
	for _, vo := range VOs {
		g.Tokens[vo] = string(sec.Data[TokenKeyPrefix+vo])
	}
	return g, nil
}
