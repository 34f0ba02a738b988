package main

import (
	"bytes"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/pki"
)

// Keys of the CA Secret. The signing CA sits under tls.crt and tls.key, as
// in the Secret that cert-manager's CA issuer reads (the chart's
// <fullname>-ca); the rest hold a rotation in progress.
const (
	// nextCertKey and nextKeyKey hold the CA that --rotate-ca=begin made:
	// trusted, not yet signing.
	nextCertKey = "next.crt"
	nextKeyKey  = "next.key"
	// previousCertKey holds the CA that --rotate-ca=switch retired from
	// signing: trusted until --rotate-ca=finish. Its key is not kept.
	previousCertKey = "previous.crt"
	// switchedAtKey is when the serving certificate last moved to a new CA
	// (RFC 3339), so that finish can wait for the manager to serve it.
	switchedAtKey = "switched-at"
)

// Steps of --rotate-ca. A rotation is three runs, each one safe on its own:
// the caBundle always trusts the CA of the certificate in the Secret and
// of the one the manager may still be serving.
const (
	// stepBegin makes a new CA and adds it to the caBundle next to the
	// signing one; the serving certificate stays.
	stepBegin = "begin"
	// stepSwitch makes the new CA the signing one and issues the serving
	// certificate from it; the old CA stays in the caBundle.
	stepSwitch = "switch"
	// stepFinish drops the old CA from the caBundle, once the manager has
	// had --reload-wait to serve the new certificate.
	stepFinish = "finish"
)

// caState is what the CA Secret holds: the CA that signs, and the CAs that
// are trusted besides it while a rotation runs.
type caState struct {
	signing *pki.CA
	// next is the CA of a begun rotation.
	next *pki.CA
	// previous is the CA certificate a switch retired, still trusted.
	previous []byte
	// switchedAt is when the serving certificate moved to signing.
	switchedAt time.Time
}

// newCAState is the state of a first install: a new signing CA, nothing
// else trusted.
func newCAState(now time.Time) (caState, error) {
	ca, err := pki.NewCA("aether-devhot-ca", caValidity, now)
	if err != nil {
		return caState{}, err
	}
	return caState{signing: ca}, nil
}

// migratedCAState is the state for an install that an older cmd/certs made,
// which threw the CA's key away: a new signing CA, with the CA in the
// serving Secret (oldCA) still trusted, as after a switch. The serving
// certificate is kept while it is good, and --rotate-ca=switch, then
// finish, retire the old CA.
func migratedCAState(oldCA []byte, now time.Time) (caState, error) {
	if _, err := parseCerts(oldCA); err != nil {
		return caState{}, fmt.Errorf("ca.crt of the serving Secret: %w", err)
	}
	s, err := newCAState(now)
	if err != nil {
		return caState{}, err
	}
	s.previous = oldCA
	s.switchedAt = now
	return s, nil
}

// decodeCAState reads the CA Secret's data.
func decodeCAState(data map[string][]byte) (caState, error) {
	var s caState
	var err error
	if s.signing, err = pki.LoadCA(data["tls.crt"], data["tls.key"]); err != nil {
		return caState{}, fmt.Errorf("tls.crt/tls.key: %w", err)
	}
	if len(data[nextCertKey]) > 0 || len(data[nextKeyKey]) > 0 {
		if s.next, err = pki.LoadCA(data[nextCertKey], data[nextKeyKey]); err != nil {
			return caState{}, fmt.Errorf("%s/%s: %w", nextCertKey, nextKeyKey, err)
		}
	}
	if p := data[previousCertKey]; len(p) > 0 {
		if _, err := parseCerts(p); err != nil {
			return caState{}, fmt.Errorf("%s: %w", previousCertKey, err)
		}
		s.previous = p
	}
	if v := data[switchedAtKey]; len(v) > 0 {
		if s.switchedAt, err = time.Parse(time.RFC3339, string(v)); err != nil {
			return caState{}, fmt.Errorf("%s: %w", switchedAtKey, err)
		}
	}
	return s, nil
}

// encode is the CA Secret's data for s.
func (s caState) encode() (map[string][]byte, error) {
	key, err := s.signing.KeyPEM()
	if err != nil {
		return nil, err
	}
	data := map[string][]byte{"tls.crt": s.signing.CertPEM, "tls.key": key}
	if s.next != nil {
		if data[nextKeyKey], err = s.next.KeyPEM(); err != nil {
			return nil, err
		}
		data[nextCertKey] = s.next.CertPEM
	}
	if len(s.previous) > 0 {
		data[previousCertKey] = s.previous
	}
	if !s.switchedAt.IsZero() {
		data[switchedAtKey] = []byte(s.switchedAt.UTC().Format(time.RFC3339))
	}
	return data, nil
}

// trusted is the caBundle for s: every CA whose certificates the manager may
// serve, the signing one first.
func (s caState) trusted() []byte {
	b := bytes.Clone(s.signing.CertPEM)
	if s.next != nil {
		b = append(b, s.next.CertPEM...)
	}
	return append(b, s.previous...)
}

// rotate applies one step of --rotate-ca to s, given the serving
// certificate now in the Secret (nil if none). It reports whether the
// serving certificate must be issued again from the signing CA.
func (s *caState) rotate(step string, serving []byte, now time.Time, reloadWait time.Duration) (reissue bool, err error) {
	fromSigning := serving != nil && chainsTo(serving, s.signing.CertPEM, now)
	switch step {
	case "":
		return false, nil
	case stepBegin:
		switch {
		case s.next != nil:
			return false, errors.New("--rotate-ca=begin: a new CA was made already; run --rotate-ca=switch next")
		case len(s.previous) > 0:
			return false, errors.New("--rotate-ca=begin: the last rotation is not finished; run --rotate-ca=finish first")
		}
		if s.next, err = pki.NewCA("aether-devhot-ca", caValidity, now); err != nil {
			return false, err
		}
		return false, nil
	case stepSwitch:
		switch {
		case s.next != nil:
			s.previous = append(bytes.Clone(s.previous), s.signing.CertPEM...)
			s.signing, s.next = s.next, nil
		case len(s.previous) == 0:
			return false, errors.New("--rotate-ca=switch: no rotation was begun; run --rotate-ca=begin first")
		case fromSigning:
			return false, nil // switched already
		}
		s.switchedAt = now
		return true, nil
	case stepFinish:
		switch {
		case len(s.previous) == 0 && s.next != nil:
			return false, errors.New("--rotate-ca=finish: the new CA does not sign yet; run --rotate-ca=switch first")
		case len(s.previous) == 0:
			return false, nil // finished already
		case !fromSigning:
			return false, errors.New("--rotate-ca=finish: the serving certificate is still from the old CA; run --rotate-ca=switch first")
		}
		if left := s.switchedAt.Add(reloadWait).Sub(now); left > 0 {
			return false, fmt.Errorf("--rotate-ca=finish: the manager may still serve the old certificate: the kubelet updates the mounted Secret and the manager reloads it within --reload-wait %s of the switch; run again in %s", reloadWait, left.Round(time.Second))
		}
		s.previous, s.switchedAt = nil, time.Time{}
		return false, nil
	}
	return false, fmt.Errorf("--rotate-ca=%q: want %s, %s or %s", step, stepBegin, stepSwitch, stepFinish)
}

// chainsTo reports whether the certificate certPEM was signed by one of
// the CAs in caPEM and is valid at now.
func chainsTo(certPEM, caPEM []byte, now time.Time) bool {
	certs, err := parseCerts(certPEM)
	if err != nil {
		return false
	}
	roots := x509.NewCertPool()
	if !roots.AppendCertsFromPEM(caPEM) {
		return false
	}
	_, err = certs[0].Verify(x509.VerifyOptions{Roots: roots, CurrentTime: now, KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny}})
	return err == nil
}

// parseCerts reads every CERTIFICATE block of b; there must be one.
func parseCerts(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	for {
		var block *pem.Block
		block, b = pem.Decode(b)
		if block == nil {
			break
		}
		if block.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if len(out) == 0 {
		return nil, errors.New("no certificate")
	}
	return out, nil
}
