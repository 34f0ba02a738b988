package app

import (
	"flag"
	"strings"
	"testing"
	"time"

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
		{args: []string{"--webhook-port=0"}, wantErr: `invalid value "0" for flag -webhook-port: "0" is not a whole number from 1 to 65535`},
		{args: []string{"--webhook-port=65535"}},
		{args: []string{"--webhook-port=65536"}, wantErr: "from 1 to 65535"},
		{args: []string{"--webhook-port=9999999999999999999"}, wantErr: "from 1 to 65535"},
		{args: []string{"--webhook-port=-1"}, wantErr: "from 1 to 65535"},
		{args: []string{"--image-lookup-timeout=100ms"}},
		{args: []string{"--image-lookup-timeout=30s"}},
		{args: []string{"--image-lookup-timeout=99ms"}, wantErr: `-image-lookup-timeout: "99ms" is not a duration from 100ms to 30s`},
		{args: []string{"--image-lookup-timeout=31s"}, wantErr: "from 100ms to 30s"},
		{args: []string{"--image-lookup-timeout=5"}, wantErr: "from 100ms to 30s"},
		{args: []string{"--fetcher-image="}, wantErr: "--fetcher-image is empty"},
		{args: []string{"--store-url=http://aether-devhot-store.aether-system.svc"}},
		{args: []string{"--store-url=aether-devhot-store"}, wantErr: `--store-url: store URL "aether-devhot-store": want http:// or https://`},
		{args: []string{"--store-url=http://u:p@store"}, wantErr: "must not carry credentials"},
		{args: []string{"--ingest-fetcher-logs", "--fleet-streams-per-namespace=0"}, wantErr: `invalid value "0" for flag -fleet-streams-per-namespace: "0" is not a whole number from 1 to 100`},
		{args: []string{"--ingest-fetcher-logs", "--fleet-streams-per-namespace=101"}, wantErr: "from 1 to 100"},
		{args: []string{"--ingest-fetcher-logs", "--fleet-streams-per-namespace=100"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var o Options
			fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
			o.AddFlags(fs)
			fs.SetOutput(new(strings.Builder))
			err := fs.Parse(tc.args)
			if err == nil {
				err = o.Validate()
			}
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
		o.LeaderElect || o.SidecarMode != SidecarModeAuto || o.EnableHTTP2 || o.IngestFetcherLogs {
		t.Fatalf("defaults differ from DESIGN.md: %+v", o)
	}
}

// TestIngestFetcherLogs: the flag and AETHER_INGEST_FETCHER_LOGS each turn
// fleet metrics on, and a flag given on the command line wins.
func TestIngestFetcherLogs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		env     string
		want    bool
		wantErr string
	}{
		{name: "default off"},
		{name: "flag", args: []string{"--ingest-fetcher-logs"}, want: true},
		{name: "flag false", args: []string{"--ingest-fetcher-logs=false"}},
		{name: "env 1", env: "1", want: true},
		{name: "env 0", env: "0"},
		{name: "env true", env: "true", want: true},
		{name: "flag false wins over env 1", args: []string{"--ingest-fetcher-logs=false"}, env: "1"},
		{name: "flag wins over env 0", args: []string{"--ingest-fetcher-logs"}, env: "0", want: true},
		{name: "bad env", env: "yes", wantErr: `AETHER_INGEST_FETCHER_LOGS="yes"`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o Options
			fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			err := o.ApplyEnv(fs, func(k string) string {
				if k == IngestEnv {
					return tc.env
				}
				return ""
			})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.IngestFetcherLogs != tc.want {
				t.Errorf("IngestFetcherLogs = %v, want %v", o.IngestFetcherLogs, tc.want)
			}
		})
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

// TestValidateRanges: Options filled in by a test, not by flags, meet the
// same ranges.
func TestValidateRanges(t *testing.T) {
	for _, o := range []Options{
		{SidecarMode: SidecarModeAuto, FetcherImage: "x", WebhookPort: 70000},
		{SidecarMode: SidecarModeAuto, FetcherImage: "x", WebhookPort: 9443, ImageLookup: true, ImageLookupTimeout: time.Minute},
	} {
		if err := o.Validate(); err == nil || !strings.Contains(err.Error(), " from ") {
			t.Errorf("%+v: %v, want the range", o, err)
		}
	}
}

// TestExcludedNamespaces: kube-system and the webhook's own namespace are
// always excluded, as the chart's namespaceSelector has them, and
// --exclude-namespaces adds the rest.
func TestExcludedNamespaces(t *testing.T) {
	for _, tc := range []struct {
		name      string
		args      []string
		namespace string
		want      string
	}{
		{"outside a cluster", nil, "", "kube-system"},
		{"in a pod", nil, "aether-system", "kube-system,aether-system"},
		{"chart's list", []string{"--exclude-namespaces=team-a, team-b,", "--exclude-namespaces=team-c"}, "aether-system", "kube-system,aether-system,team-a,team-b,team-c"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var o Options
			fs := flag.NewFlagSet("webhook", flag.ContinueOnError)
			o.AddFlags(fs)
			if err := fs.Parse(tc.args); err != nil {
				t.Fatal(err)
			}
			o.Namespace = tc.namespace
			if got := strings.Join(o.ExcludedNamespaces(), ","); got != tc.want {
				t.Errorf("ExcludedNamespaces = %s, want %s", got, tc.want)
			}
		})
	}
}
