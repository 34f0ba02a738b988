package main

import (
	"strings"
	"testing"
)

func TestParseOCIDestination(t *testing.T) {
	cases := []struct {
		to, repo, tag string
		wantErr       string
	}{
		{"oci://ghcr.io/org/app", "ghcr.io/org/app", "", ""},
		{"oci://10.201.0.2:5000/ns/app", "10.201.0.2:5000/ns/app", "", ""},
		{"oci://10.201.0.2:5000/ns/app:dev", "10.201.0.2:5000/ns/app", "dev", ""},
		{"oci://localhost/app:v1", "localhost/app", "v1", ""},
		{"ghcr.io/org/app", "", "", "must be oci://"},
		{"https://ghcr.io/org/app", "", "", "must be oci://"},
		{"oci://ghcr.io/org/app@sha256:" + strings.Repeat("ab", 32), "", "", "leave out the digest"},
		{"oci://user:pw@ghcr.io/org/app", "", "", "credentials"},
		{"oci://org/app", "", "", "registry's host"},
		{"oci://ghcr.io", "", "", "registry's host"},
		{"oci://ghcr.io/Org/App", "", "", "--to"},
		{"oci://ghcr.io/org/app:bad tag", "", "", "--to"},
	}
	for _, tc := range cases {
		repo, tag, err := parseOCIDestination(tc.to)
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err %v, want %q", tc.to, err, tc.wantErr)
			}
			continue
		}
		if err != nil || repo.Name() != tc.repo || tag != tc.tag {
			t.Errorf("%s: %q %q %v, want %q %q", tc.to, repo.Name(), tag, err, tc.repo, tc.tag)
		}
	}
}
