package arcrest

import (
	"bytes"
	"context"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"encoding/pem"
	"net/http"
	"regexp"
	"time"

	corev1 "k8s.io/api/core/v1"
	apierrors "k8s.io/apimachinery/pkg/api/errors"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"

	kubehtcv1alpha1 "github.com/kubehtc/kubehtc/apis/kubehtc/v1alpha1"
	"github.com/kubehtc/kubehtc/gridgateway/auth"
	"github.com/kubehtc/kubehtc/gridgateway/translate"
)

// Delegations are Secrets in the caller's VO namespace, one per delegation id: the private key the
// gateway generated for the CSR (PendingKeyKey, until the client returns the signed chain) and the
// assembled proxy credential (translate.CredentialKey: the new proxy certificate, its key, the client's
// chain), which jobs mount. A renewal keeps the old credential usable until the new chain arrives.
const (
	// DelegationLabel marks delegation Secrets.
	DelegationLabel = kubehtcv1alpha1.DelegationLabel
	// delegationOwnerAnnotation holds the full owner key (the label is a hash).
	delegationOwnerAnnotation = kubehtcv1alpha1.DelegationOwnerAnnotation
	// DelegationExpiresAnnotation is the expiry of the stored proxy (RFC 3339).
	DelegationExpiresAnnotation = kubehtcv1alpha1.DelegationExpiresAnnotation
	// DelegationDNAnnotation is the EEC DN of the stored proxy.
	DelegationDNAnnotation = kubehtcv1alpha1.DelegationDNAnnotation
	// PendingKeyKey is the Secret key of the private key waiting for its signed certificate.
	PendingKeyKey = "pending-key"
	// MaxChainBytes bounds a delegated chain.
	MaxChainBytes = 64 << 10
	// delegationKeyBits is the size of the generated RSA keys.
	delegationKeyBits = 2048
)

var delegationIDPattern = regexp.MustCompile(`^[0-9a-f]{8,40}$`)

func delegationSecretName(id string) string { return "arc-delegation-" + id }

// delegations routes /delegations[/<id>].
func (s *Server) delegations(w http.ResponseWriter, r *http.Request, id *auth.Identity, tail string) error {
	action := r.URL.Query().Get("action")
	if tail == "" {
		switch {
		case r.Method == http.MethodGet:
			if err := requireScope(id, auth.ScopeRead); err != nil {
				return err
			}
			return s.listDelegations(w, r, id)
		case r.Method == http.MethodPost && action == "new":
			if err := requireScope(id, auth.ScopeCreate); err != nil {
				return err
			}
			return s.newDelegation(w, r, id, "")
		case r.Method == http.MethodPost:
			return errorf(http.StatusNotImplemented, "Action not implemented")
		}
		return errorf(http.StatusMethodNotAllowed, "Method not allowed")
	}
	did := tail
	if !delegationIDPattern.MatchString(did) {
		return errorf(http.StatusNotFound, "Delegation not found")
	}
	switch {
	case r.Method == http.MethodPut:
		if err := requireScope(id, auth.ScopeCreate); err != nil {
			return err
		}
		return s.putDelegation(w, r, id, did)
	case r.Method == http.MethodPost && action == "renew":
		if err := requireScope(id, auth.ScopeCreate); err != nil {
			return err
		}
		return s.newDelegation(w, r, id, did)
	case (r.Method == http.MethodPost && action == "get") || r.Method == http.MethodGet:
		if err := requireScope(id, auth.ScopeRead); err != nil {
			return err
		}
		return s.getDelegation(w, r, id, did)
	case (r.Method == http.MethodPost && action == "delete") || r.Method == http.MethodDelete:
		if err := requireScope(id, auth.ScopeCancel); err != nil {
			return err
		}
		sec, err := s.delegationSecret(r.Context(), id, did)
		if err != nil {
			return err
		}
		if err := s.opts.Client.Delete(r.Context(), sec); client.IgnoreNotFound(err) != nil {
			return err
		}
		// 200: pyarcrest's deleteDelegation (maikenp/pyarcrest src/pyarcrest/arc.py) treats anything else as
		// an error, and calls it when a renewal or a new delegation fails. (A-REX's rest.cpp answers 202
		// through HTTPDELETEResponse; the ARC client never deletes delegations.)
		w.WriteHeader(http.StatusOK)
		return nil
	case r.Method == http.MethodPost:
		return errorf(http.StatusNotImplemented, "Action not implemented")
	}
	return errorf(http.StatusMethodNotAllowed, "Method not allowed")
}

// delegationSecret fetches a delegation of the caller; another owner's is "not found".
func (s *Server) delegationSecret(ctx context.Context, id *auth.Identity, did string) (*corev1.Secret, error) {
	if !delegationIDPattern.MatchString(did) {
		return nil, errorf(http.StatusNotFound, "Delegation not found")
	}
	var sec corev1.Secret
	err := s.opts.Client.Get(ctx, types.NamespacedName{Namespace: id.VO.Namespace, Name: delegationSecretName(did)}, &sec)
	if apierrors.IsNotFound(err) {
		return nil, errorf(http.StatusNotFound, "Delegation not found")
	}
	if err != nil {
		return nil, err
	}
	if sec.Labels[DelegationLabel] != did || sec.Annotations[delegationOwnerAnnotation] != translate.OwnerKey(id.Owner) {
		return nil, errorf(http.StatusNotFound, "Delegation not found")
	}
	return &sec, nil
}

// newDelegation generates a key and answers with its CSR: a new delegation (did == "") or the renewal of
// an existing one.
func (s *Server) newDelegation(w http.ResponseWriter, r *http.Request, id *auth.Identity, did string) error {
	if _, err := readBody(w, r, MaxChainBytes); err != nil {
		return err
	}
	key, err := rsa.GenerateKey(rand.Reader, delegationKeyBits)
	if err != nil {
		return err
	}
	csr, err := x509.CreateCertificateRequest(rand.Reader, &x509.CertificateRequest{Subject: pkix.Name{CommonName: "kubehtc delegation"}}, key)
	if err != nil {
		return err
	}
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "RSA PRIVATE KEY", Bytes: x509.MarshalPKCS1PrivateKey(key)})
	ctx := r.Context()
	if did == "" {
		var b [8]byte
		if _, err := rand.Read(b[:]); err != nil {
			return err
		}
		did = hex.EncodeToString(b[:])
		sec := &corev1.Secret{
			ObjectMeta: metav1.ObjectMeta{
				Name: delegationSecretName(did), Namespace: id.VO.Namespace,
				Labels:      map[string]string{DelegationLabel: did, translate.OwnerLabel: translate.OwnerLabelValue(id.Owner)},
				Annotations: map[string]string{delegationOwnerAnnotation: translate.OwnerKey(id.Owner)},
			},
			Type: corev1.SecretTypeOpaque,
			Data: map[string][]byte{PendingKeyKey: keyPEM},
		}
		if err := s.opts.Client.Create(ctx, sec); err != nil {
			return err
		}
		klog.FromContext(ctx).V(1).Info("New ARC delegation", "delegation", did, "vo", id.VO.Name)
	} else {
		sec, err := s.delegationSecret(ctx, id, did)
		if err != nil {
			return err
		}
		patch := client.MergeFrom(sec.DeepCopy())
		sec.Data[PendingKeyKey] = keyPEM
		if err := s.opts.Client.Patch(ctx, sec, patch); err != nil {
			return err
		}
	}
	w.Header().Set("Location", APIPath+"/delegations/"+did)
	w.Header().Set("Content-Type", "application/x-pem-file")
	w.WriteHeader(http.StatusCreated)
	_, err = w.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE REQUEST", Bytes: csr}))
	return err
}

// putDelegation takes the signed chain: the new proxy (for the pending key), then the client's chain.
// The chain must verify to a trusted CA as a proxy chain and, for a certificate caller, belong to the
// caller's own DN.
func (s *Server) putDelegation(w http.ResponseWriter, r *http.Request, id *auth.Identity, did string) error {
	body, err := readBody(w, r, MaxChainBytes)
	if err != nil {
		return err
	}
	ctx := r.Context()
	sec, err := s.delegationSecret(ctx, id, did)
	if err != nil {
		return err
	}
	keyBlock, _ := pem.Decode(sec.Data[PendingKeyKey])
	if keyBlock == nil {
		return errorf(http.StatusBadRequest, "delegation %s has no pending request: POST ?action=renew first", did)
	}
	key, err := x509.ParsePKCS1PrivateKey(keyBlock.Bytes)
	if err != nil {
		return err
	}
	chain, err := auth.ParsePEMCertificates(body)
	if err != nil {
		return errorf(http.StatusBadRequest, "delegated chain: %v", err)
	}
	if pub, ok := chain[0].PublicKey.(*rsa.PublicKey); !ok || !pub.Equal(&key.PublicKey) {
		return errorf(http.StatusBadRequest, "the first certificate is not for the key of delegation %s", did)
	}
	if s.opts.CAs == nil {
		return errorf(http.StatusForbidden, "X.509 delegation is not configured (no CA directory)")
	}
	eec, err := auth.VerifyProxyChain(chain, s.opts.CAs, s.now())
	if err != nil {
		return errorf(http.StatusForbidden, "delegated chain: %v", err)
	}
	dn := auth.OpenSSLDN(eec)
	if id.Owner.DN != "" && dn != id.Owner.DN {
		return errorf(http.StatusForbidden, "delegated chain belongs to %q, not to the caller %q", dn, id.Owner.DN)
	}
	var cred bytes.Buffer
	cred.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: chain[0].Raw}))
	cred.Write(sec.Data[PendingKeyKey])
	for _, c := range chain[1:] {
		cred.Write(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw}))
	}
	patch := client.MergeFrom(sec.DeepCopy())
	sec.Data[translate.CredentialKey] = cred.Bytes()
	delete(sec.Data, PendingKeyKey)
	sec.Annotations[DelegationExpiresAnnotation] = chain[0].NotAfter.UTC().Format(time.RFC3339)
	sec.Annotations[DelegationDNAnnotation] = dn
	if err := s.opts.Client.Patch(ctx, sec, patch); err != nil {
		return err
	}
	klog.FromContext(ctx).V(1).Info("ARC delegation stored", "delegation", did, "dn", dn, "expires", chain[0].NotAfter)
	w.WriteHeader(http.StatusOK)
	return nil
}

// getDelegation returns the stored certificates (never the key).
func (s *Server) getDelegation(w http.ResponseWriter, r *http.Request, id *auth.Identity, did string) error {
	sec, err := s.delegationSecret(r.Context(), id, did)
	if err != nil {
		return err
	}
	cred := sec.Data[translate.CredentialKey]
	if len(cred) == 0 {
		return errorf(http.StatusNotFound, "delegation %s has no credential yet", did)
	}
	var out bytes.Buffer
	for rest := cred; ; {
		var b *pem.Block
		b, rest = pem.Decode(rest)
		if b == nil {
			break
		}
		if b.Type == "CERTIFICATE" {
			out.Write(pem.EncodeToMemory(b))
		}
	}
	w.Header().Set("Content-Type", "application/x-pem-file")
	_, err = w.Write(out.Bytes())
	return err
}

// listDelegations answers GET /delegations.
func (s *Server) listDelegations(w http.ResponseWriter, r *http.Request, id *auth.Identity) error {
	var list corev1.SecretList
	if err := s.opts.Client.List(r.Context(), &list, client.InNamespace(id.VO.Namespace),
		client.MatchingLabels{translate.OwnerLabel: translate.OwnerLabelValue(id.Owner)}, client.HasLabels{DelegationLabel}); err != nil {
		return err
	}
	doc := el("delegations")
	for _, sec := range list.Items {
		if sec.Annotations[delegationOwnerAnnotation] != translate.OwnerKey(id.Owner) {
			continue
		}
		doc.add(el("delegation", leaf("id", sec.Labels[DelegationLabel]), leaf("type", "x509")))
	}
	respond(w, r, http.StatusOK, doc)
	return nil
}
