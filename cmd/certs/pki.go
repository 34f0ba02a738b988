package main

import (
	"bytes"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/pki"
)

// caValidity is the CA's lifetime. It outlives many serving certificates:
// a renewal signs with the same CA and leaves the caBundle as it is.
const caValidity = 10 * 365 * 24 * time.Hour

// Bundle is a serving certificate, its key, and the CAs trusted to have
// signed it (the caBundle), all PEM: the three keys of the serving Secret.
type Bundle struct {
	CertPEM, KeyPEM, CAPEM []byte
}

// DNSNames are the names the API server may use to reach a Service: it dials
// <service>.<namespace>.svc; the longer form is there for clients that use it.
func DNSNames(service, namespace string) []string {
	return []string{
		service,
		service + "." + namespace,
		service + "." + namespace + ".svc",
		service + "." + namespace + ".svc.cluster.local",
	}
}

// issueBundle signs a serving certificate for names with ca, valid from
// now for validity; the bundle's CA is trusted, the caBundle in force.
func issueBundle(ca *pki.CA, trusted []byte, names []string, validity time.Duration, now time.Time) (Bundle, error) {
	if len(names) == 0 {
		return Bundle{}, errors.New("no DNS names")
	}
	cert, key, err := ca.Issue(pki.Leaf{CommonName: names[0], DNSNames: names, Server: true}, validity, now)
	if err != nil {
		return Bundle{}, fmt.Errorf("serving certificate: %w", err)
	}
	return Bundle{CertPEM: cert, KeyPEM: key, CAPEM: trusted}, nil
}

// Check reports why b cannot serve names until now+renewBefore, or nil if it
// can: the key must match, and the certificate must chain to a CA of
// b.CAPEM, cover every name and not expire within renewBefore.
func (b Bundle) Check(names []string, now time.Time, renewBefore time.Duration) error {
	pair, err := tls.X509KeyPair(b.CertPEM, b.KeyPEM)
	if err != nil {
		return fmt.Errorf("key pair: %w", err)
	}
	leaf, err := x509.ParseCertificate(pair.Certificate[0])
	if err != nil {
		return err
	}
	roots := x509.NewCertPool()
	if len(bytes.TrimSpace(b.CAPEM)) == 0 || !roots.AppendCertsFromPEM(b.CAPEM) {
		return errors.New("no CA certificate")
	}
	for _, n := range names {
		if _, err := leaf.Verify(x509.VerifyOptions{
			DNSName:     n,
			Roots:       roots,
			CurrentTime: now,
			KeyUsages:   []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		}); err != nil {
			return fmt.Errorf("%s: %w", n, err)
		}
	}
	if left := leaf.NotAfter.Sub(now); left < renewBefore {
		return fmt.Errorf("expires in %s, within --renew-before %s", left.Round(time.Minute), renewBefore)
	}
	return nil
}
