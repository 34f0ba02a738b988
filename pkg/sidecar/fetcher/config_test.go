package fetcher

import (
	"cmp"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// base is the least environment the fetcher runs with.
func base() map[string]string {
	return map[string]string{sidecar.EnvPodNamespace: "ns", sidecar.EnvDeployment: "app"}
}

// with is base plus one variable.
func with(k, v string) map[string]string {
	env := base()
	env[k] = v
	return env
}

func writeFile(t *testing.T, path string) {
	t.Helper()
	if err := os.WriteFile(path, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
}

func load(env map[string]string, args ...string) (Config, error) {
	return LoadConfig(args, func(k string) string { return env[k] }, io.Discard)
}

func TestConfigDefaults(t *testing.T) {
	c, err := load(base())
	if err != nil {
		t.Fatal(err)
	}
	want := Config{
		PodName:          c.PodName, // the host name
		PodNamespace:     "ns",
		Deployment:       "app",
		Workspace:        "/workspace",
		FetchInterval:    5 * time.Second,
		FetchMode:        FetchWatch,
		MaxRetries:       0,
		BackoffMax:       60 * time.Second,
		MaxArtifactBytes: release.DefaultMaxBytes,
		StoreTokenFile:   "/var/run/secrets/kubernetes.io/serviceaccount/store-token",
		PullSecretsDir:   "/var/run/secrets/kubernetes.io/serviceaccount/pull-secrets",
		MetricsAddr:      ":9102",
	}
	if c != want {
		t.Errorf("got  %+v\nwant %+v", c, want)
	}
	if c.PodName == "" {
		t.Error("PodName should default to the host name")
	}
}

// TestConfigEnvAndFlagSymmetry proves that every environment variable has a
// flag twin named by FlagName, and that the flag wins over the variable.
func TestConfigEnvAndFlagSymmetry(t *testing.T) {
	const (
		probeA = `{"source":"readinessProbe","httpGet":{"scheme":"HTTP","port":3000,"path":"/healthz"},"timeoutSeconds":1,"periodSeconds":10,"failureThreshold":3}`
		probeB = `{"source":"startupProbe","tcpSocket":{"port":8080},"timeoutSeconds":2,"periodSeconds":5,"failureThreshold":1}`
	)
	caA, caB := t.TempDir()+"/a.pem", t.TempDir()+"/b.pem"
	writeFile(t, caA)
	writeFile(t, caB)
	cases := []struct {
		env, flag    string
		envV, flagV  string
		get          func(Config) string
		wantE, wantF string // when the stored form differs from the input
	}{
		{sidecar.EnvPodName, "pod-name", "p1", "p2", func(c Config) string { return c.PodName }, "", ""},
		{sidecar.EnvPodNamespace, "pod-namespace", "n1", "n2", func(c Config) string { return c.PodNamespace }, "", ""},
		{sidecar.EnvDeployment, "deployment", "d1", "d2", func(c Config) string { return c.Deployment }, "", ""},
		{sidecar.EnvWorkspace, "workspace", "/w1", "/w2", func(c Config) string { return c.Workspace }, "", ""},
		{sidecar.EnvFetchIntervalSec, "fetch-interval-sec", "7", "9", func(c Config) string { return c.FetchInterval.String() }, "7s", "9s"},
		{sidecar.EnvFetchMode, "fetch-mode", "poll", "watch", func(c Config) string { return string(c.FetchMode) }, "", ""},
		{sidecar.EnvMaxRetries, "max-retries", "3", "4", func(c Config) string { return fmt.Sprint(c.MaxRetries) }, "", ""},
		{sidecar.EnvBackoffMaxSec, "backoff-max-sec", "10", "20", func(c Config) string { return c.BackoffMax.String() }, "10s", "20s"},
		{sidecar.EnvMaxArtifactBytes, "max-artifact-bytes", "4096", "8192", func(c Config) string { return fmt.Sprint(c.MaxArtifactBytes) }, "", ""},
		{sidecar.EnvCAFile, "ca-file", caA, caB, func(c Config) string { return c.CAFile }, "", ""},
		{sidecar.EnvStoreURL, "store-url", "http://s1", "https://s2/x", func(c Config) string { return c.StoreURL.String() }, "", ""},
		{sidecar.EnvStoreTokenFile, "store-token-file", "/t1", "/t2", func(c Config) string { return c.StoreTokenFile }, "", ""},
		{sidecar.EnvPullSecretsDir, "pull-secrets-dir", "/p1", "/p2", func(c Config) string { return c.PullSecretsDir }, "", ""},
		{sidecar.EnvMetricsAddr, "metrics-addr", ":1", "127.0.0.1:2", func(c Config) string { return c.MetricsAddr }, "", ""},
		{sidecar.EnvAppDir, "app-dir", "/app", ".", func(c Config) string { return c.AppDir }, "", ""},
		{sidecar.EnvAppProbe, "app-probe", probeA, probeB, func(c Config) string { return c.AppProbe.String() }, "", ""},
		{EnvKubeconfig, "kubeconfig", "/k1", "/k2", func(c Config) string { return c.Kubeconfig }, "", ""},
	}
	if len(cases) != len(settings) {
		t.Fatalf("%d cases for %d settings: every setting needs a row", len(cases), len(settings))
	}
	for i, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			if settings[i].env != tc.env {
				t.Fatalf("settings[%d] is %s", i, settings[i].env)
			}
			if got := FlagName(tc.env); got != tc.flag {
				t.Errorf("FlagName(%s) = %q, want %q", tc.env, got, tc.flag)
			}
			wantE, wantF := cmp.Or(tc.wantE, tc.envV), cmp.Or(tc.wantF, tc.flagV)

			env := base()
			env[tc.env] = tc.envV
			c, err := load(env)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.get(c); got != wantE {
				t.Errorf("env only: got %q, want %q", got, wantE)
			}

			c, err = load(env, "--"+tc.flag+"="+tc.flagV)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.get(c); got != wantF {
				t.Errorf("env and flag: got %q, want the flag's %q", got, wantF)
			}

			delete(env, tc.env)
			c, err = load(env, "-"+tc.flag, tc.flagV)
			if err != nil {
				t.Fatal(err)
			}
			if got := tc.get(c); got != wantF {
				t.Errorf("flag only: got %q, want %q", got, wantF)
			}
		})
	}
}

func TestConfigErrors(t *testing.T) {
	cases := []struct {
		name    string
		env     map[string]string
		args    []string
		mention []string
	}{
		{"no namespace", map[string]string{sidecar.EnvDeployment: "app"}, nil, []string{"POD_NAMESPACE", "--pod-namespace", "must be set"}},
		{"no deployment", map[string]string{sidecar.EnvPodNamespace: "ns"}, nil, []string{"AETHER_DEPLOYMENT", "--deployment"}},
		{"interval not a number", with(sidecar.EnvFetchIntervalSec, "5s"), nil, []string{"AETHER_FETCH_INTERVAL_SEC", "--fetch-interval-sec", `"5s"`, "whole number of seconds"}},
		{"interval zero by flag", base(), []string{"--fetch-interval-sec=0"}, []string{"AETHER_FETCH_INTERVAL_SEC", "--fetch-interval-sec", `"0"`}},
		{"mode", with(sidecar.EnvFetchMode, "push"), nil, []string{"AETHER_FETCH_MODE", "--fetch-mode", `"watch" or "poll"`}},
		{"negative retries", with(sidecar.EnvMaxRetries, "-1"), nil, []string{"AETHER_MAX_RETRIES", "--max-retries"}},
		{"backoff", with(sidecar.EnvBackoffMaxSec, "1.5"), nil, []string{"AETHER_BACKOFF_MAX_SEC", "--backoff-max-sec"}},
		{"bytes", with(sidecar.EnvMaxArtifactBytes, "10MiB"), nil, []string{"AETHER_MAX_ARTIFACT_BYTES", "--max-artifact-bytes"}},
		{"missing CA file", with(sidecar.EnvCAFile, "/nonexistent/ca.pem"), nil, []string{"AETHER_CA_FILE", "--ca-file", "/nonexistent/ca.pem"}},
		{"store URL", with(sidecar.EnvStoreURL, "aether-devhot-store.aether-system.svc"), nil, []string{"AETHER_STORE_URL", "--store-url", "want http:// or https://"}},
		{"store URL with credentials", base(), []string{"--store-url=http://u:p@store"}, []string{"AETHER_STORE_URL", "must not carry credentials"}},
		{"metrics addr", with(sidecar.EnvMetricsAddr, "9102"), nil, []string{"AETHER_METRICS_ADDR", "--metrics-addr", "host:port"}},
		{"metrics port", base(), []string{"--metrics-addr=:http"}, []string{"AETHER_METRICS_ADDR", "--metrics-addr", "port"}},
		{"relative app dir", with(sidecar.EnvAppDir, "app"), nil, []string{"AETHER_APP_DIR", "--app-dir", `"."`, "absolute"}},
		{"unclean app dir", base(), []string{"--app-dir=/app/../etc"}, []string{"AETHER_APP_DIR", "clean absolute path"}},
		{"unknown flag", base(), []string{"--insecure"}, []string{"insecure"}},
		{"stray argument", base(), []string{"now"}, []string{`unexpected argument "now"`}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := load(tc.env, tc.args...)
			var ce *ConfigError
			if !errors.As(err, &ce) {
				t.Fatalf("error %v is not a *ConfigError", err)
			}
			for _, m := range tc.mention {
				if !strings.Contains(err.Error(), m) {
					t.Errorf("error %q does not mention %q", err, m)
				}
			}
		})
	}
}

// TestConfigRanges: every numeric setting is refused below, above and far
// above its range (9999999999 s overflowed the backoff into a negative
// delay), and the error names the setting and the range.
func TestConfigRanges(t *testing.T) {
	cases := []struct {
		env       string
		min, max  string
		below     []string
		wantRange string
	}{
		{sidecar.EnvFetchIntervalSec, "1", "3600", []string{"0", "-1"}, "from 1 to 3600"},
		{sidecar.EnvMaxRetries, "0", "1000", []string{"-1"}, "from 0 to 1000"},
		{sidecar.EnvBackoffMaxSec, "1", "3600", []string{"0", "-1"}, "from 1 to 3600"},
		{sidecar.EnvMaxArtifactBytes, "4096", "8589934592", []string{"4095", "1", "0", "-1"}, "from 4096 to 8589934592"},
	}
	for _, tc := range cases {
		t.Run(tc.env, func(t *testing.T) {
			for _, v := range []string{tc.min, tc.max} {
				if _, err := load(with(tc.env, v)); err != nil {
					t.Errorf("%s=%s: %v", tc.env, v, err)
				}
			}
			above := []string{"9999999999", "9999999999999999999", "1e3", "5s", " 5", "0x10"}
			n, _ := strconv.ParseInt(tc.max, 10, 64)
			above = append(above, strconv.FormatInt(n+1, 10))
			for _, v := range append(tc.below, above...) {
				_, err := load(with(tc.env, v))
				var ce *ConfigError
				if !errors.As(err, &ce) || !strings.Contains(err.Error(), tc.env) || !strings.Contains(err.Error(), tc.wantRange) || !strings.Contains(err.Error(), strconv.Quote(v)) {
					t.Errorf("%s=%q: %v; want a *ConfigError naming it, the value and %q", tc.env, v, err, tc.wantRange)
				}
				_, err = load(base(), "--"+FlagName(tc.env)+"="+v)
				if !strings.Contains(fmt.Sprint(err), "--"+FlagName(tc.env)) {
					t.Errorf("--%s=%q: %v; want the flag named", FlagName(tc.env), v, err)
				}
			}
		})
	}
}

func TestConfigHelp(t *testing.T) {
	var out strings.Builder
	_, err := LoadConfig([]string{"-h"}, func(string) string { return "" }, &out)
	if !errors.Is(err, flag.ErrHelp) {
		t.Fatalf("got %v, want flag.ErrHelp", err)
	}
	for _, s := range settings {
		if !strings.Contains(out.String(), "-"+FlagName(s.env)) || !strings.Contains(out.String(), "env "+s.env) {
			t.Errorf("usage does not show --%s with its env %s", FlagName(s.env), s.env)
		}
	}
}
