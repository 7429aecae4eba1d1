package config

import "slices"

// TokenClaims are the claims of a verified token that VO mapping looks at.
type TokenClaims struct {
	Issuer  string
	Subject string
	Groups  []string
}

// CertificateIdentity is a verified client certificate: its subject DN and any VOMS FQANs.
type CertificateIdentity struct {
	DN    string
	FQANs []string
}

// VOForToken returns the first VO (in configuration order) with a rule matching the claims.
func (s *Site) VOForToken(c TokenClaims) (*VO, bool) {
	for i := range s.VOs {
		for _, r := range s.VOs[i].Tokens {
			if r.Issuer != c.Issuer {
				continue
			}
			if r.subject != nil && !r.subject.MatchString(c.Subject) {
				continue
			}
			if r.Group != "" && !slices.Contains(c.Groups, r.Group) {
				continue
			}
			return &s.VOs[i], true
		}
	}
	return nil, false
}

// VOForCertificate returns the first VO (in configuration order) with a rule matching the certificate.
func (s *Site) VOForCertificate(c CertificateIdentity) (*VO, bool) {
	for i := range s.VOs {
		for _, r := range s.VOs[i].Certificates {
			if r.dn != nil && !r.dn.MatchString(c.DN) {
				continue
			}
			if r.FQAN != "" && !slices.Contains(c.FQANs, r.FQAN) {
				continue
			}
			return &s.VOs[i], true
		}
	}
	return nil, false
}
