package main

import (
	"crypto/x509"
	"encoding/pem"
	"strings"
	"testing"
	"time"
)

// newTestBundle is a serving bundle for names, valid for validity, from a
// CA of its own.
func newTestBundle(t *testing.T, names []string, validity time.Duration, now time.Time) Bundle {
	t.Helper()
	st, err := newCAState(now)
	if err != nil {
		t.Fatal(err)
	}
	b, err := issueBundle(st.signing, st.trusted(), names, validity, now)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func TestIssueBundleServesEveryName(t *testing.T) {
	now := time.Now()
	names := DNSNames("aether-devhot", "aether-system")
	b := newTestBundle(t, names, 24*time.Hour, now)
	if err := b.Check(names, now, time.Hour); err != nil {
		t.Fatalf("fresh bundle fails its own check: %v", err)
	}
	block, _ := pem.Decode(b.CertPEM)
	leaf, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if leaf.IsCA {
		t.Error("serving certificate is a CA")
	}
	if !strings.Contains(strings.Join(leaf.DNSNames, ","), "aether-devhot.aether-system.svc") {
		t.Errorf("DNS names %v lack the name the API server dials", leaf.DNSNames)
	}
	block, _ = pem.Decode(b.CAPEM)
	ca, err := x509.ParseCertificate(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	if !ca.IsCA || ca.KeyUsage&x509.KeyUsageCertSign == 0 {
		t.Errorf("CA: IsCA=%v usage=%v", ca.IsCA, ca.KeyUsage)
	}
}

func TestCheckRejects(t *testing.T) {
	now := time.Now()
	names := DNSNames("aether-devhot", "aether-system")
	good := newTestBundle(t, names, 24*time.Hour, now)
	other := newTestBundle(t, names, 24*time.Hour, now)
	for _, tc := range []struct {
		name        string
		b           Bundle
		names       []string
		renewBefore time.Duration
		want        string
	}{
		{"due for renewal", good, names, 48 * time.Hour, "renew-before"},
		{"other service", good, DNSNames("other", "aether-system"), time.Hour, "not other"},
		{"foreign CA", Bundle{good.CertPEM, good.KeyPEM, other.CAPEM}, names, time.Hour, "unknown authority"},
		{"foreign key", Bundle{good.CertPEM, other.KeyPEM, good.CAPEM}, names, time.Hour, "key pair"},
		{"no CA", Bundle{good.CertPEM, good.KeyPEM, nil}, names, time.Hour, "no CA"},
		{"empty", Bundle{}, names, time.Hour, "key pair"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.b.Check(tc.names, now, tc.renewBefore)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Check = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}
