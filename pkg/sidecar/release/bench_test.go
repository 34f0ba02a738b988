package release_test

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
	"github.com/aether-dev/aether-devhot/pkg/sidecar/release"
)

// sourceLike builds about size bytes of JS-like text in 16 KiB files: it
// compresses about as well as real source, so the ratio is realistic.
func sourceLike(b *testing.B, size int) ([]byte, int64) {
	words := strings.Fields("const let function return require module exports async await if else for of " +
		"this that value result error callback promise then catch import from default class extends new")
	rng := rand.New(rand.NewPCG(1, 2))
	var es []entry
	var total int64
	for i := 0; total < int64(size); i++ {
		var sb strings.Builder
		for sb.Len() < 16<<10 {
			sb.WriteString(words[rng.IntN(len(words))])
			if rng.IntN(8) == 0 {
				fmt.Fprintf(&sb, "%d;\n", rng.IntN(1e6))
			} else {
				sb.WriteByte(' ')
			}
		}
		es = append(es, file(fmt.Sprintf("src/m%03d/f%04d.js", i/100, i), sb.String()))
		total += int64(sb.Len())
	}
	return tgz(b, es...), total
}

// BenchmarkApply measures download, verification and extraction of a
// 16 MiB (extracted) artifact; MB/s counts extracted bytes.
func BenchmarkApply(b *testing.B) {
	artifact, extracted := sourceLike(b, 16<<20)
	b.Logf("artifact: %d bytes compressed, %d extracted", len(artifact), extracted)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.Write(artifact) }))
	defer srv.Close()
	loopback, err := release.NewHTTPClient("")
	if err != nil {
		b.Fatal(err)
	}
	for _, bc := range []struct {
		name   string
		client *http.Client
	}{
		{"memory", &http.Client{Transport: memTransport{artifact}}},
		{"loopback", loopback},
	} {
		b.Run(bc.name, func(b *testing.B) {
			ws, err := release.Open(b.TempDir())
			if err != nil {
				b.Fatal(err)
			}
			tg := mustTarget(b, digestOf(artifact), srv.URL+"/a.tgz")
			b.SetBytes(extracted)
			for b.Loop() {
				if _, err := ws.Apply(context.Background(), bc.client, tg, release.Limits{}); err != nil {
					b.Fatal(err)
				}
				b.StopTimer()
				// Remove it so the next Apply downloads again instead of
				// republishing.
				if err := os.RemoveAll(filepath.Join(ws.Dir(), sidecar.ReleasesDir, tg.Hex)); err != nil {
					b.Fatal(err)
				}
				b.StartTimer()
			}
		})
	}
}
