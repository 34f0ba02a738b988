package app

import (
	"flag"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

func TestFlagsAndValidate(t *testing.T) {
	for _, tc := range []struct {
		args    []string
		wantErr string
	}{
		{args: nil},
		{args: []string{"--sidecar-mode=legacy", "--webhook-port=10250", "--fetcher-image=x:1"}},
		{args: []string{"--sidecar-mode=sidecar"}, wantErr: `--sidecar-mode="sidecar"`},
		{args: []string{"--webhook-port=0"}, wantErr: "--webhook-port=0"},
		{args: []string{"--fetcher-image="}, wantErr: "--fetcher-image is empty"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var o Options
			fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.Validate()
			if tc.wantErr == "" && err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if tc.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tc.wantErr)) {
				t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestDefaultsMatchDesign(t *testing.T) {
	var o Options
	fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
	o.AddFlags(fs)
	if o.WebhookPort != 9443 || o.MetricsBindAddress != ":8080" || o.HealthProbeBindAddr != ":8081" ||
		o.LeaderElect || o.SidecarMode != ModeAuto || o.EnableHTTP2 {
		t.Fatalf("defaults differ from DESIGN.md: %+v", o)
	}
}

func TestModeFor(t *testing.T) {
	for _, tc := range []struct {
		major, minor string
		want         sidecar.Mode
	}{
		{"1", "37", sidecar.ModeNative},
		{"1", "29", sidecar.ModeNative},
		{"1", "29+", sidecar.ModeNative},
		{"1", "28", sidecar.ModeLegacy},
		{"1", "28+", sidecar.ModeLegacy},
		{"2", "0", sidecar.ModeNative},
		{"", "", sidecar.ModeLegacy},
	} {
		if got := ModeFor(tc.major, tc.minor); got != tc.want {
			t.Errorf("ModeFor(%q, %q) = %s, want %s", tc.major, tc.minor, got, tc.want)
		}
	}
}
