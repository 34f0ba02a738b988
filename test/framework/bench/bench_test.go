package bench

import (
	"strings"
	"testing"
	"time"
)

func TestPercentile(t *testing.T) {
	var ds []time.Duration
	for i := 1; i <= 30; i++ {
		ds = append(ds, time.Duration(i)*time.Millisecond)
	}
	for _, c := range []struct {
		p    float64
		want time.Duration
	}{{50, 15 * time.Millisecond}, {95, 29 * time.Millisecond}, {100, 30 * time.Millisecond}, {0, time.Millisecond}} {
		if got := Percentile(ds, c.p); got != c.want {
			t.Errorf("p%v = %v, want %v", c.p, got, c.want)
		}
	}
	if Percentile(nil, 50) != 0 || Median[float64](nil) != 0 || Median([]int64{3, 1, 2}) != 2 {
		t.Error("empty input should give 0")
	}
}

func TestParseMetrics(t *testing.T) {
	text := `# HELP apiserver_request_total x
# TYPE apiserver_request_total counter
apiserver_request_total{code="200",component="apiserver",group="apps",resource="deployments",scope="resource",verb="GET",version="v1"} 42
apiserver_request_total{code="200",group="",resource="pods",scope="namespace",verb="LIST",note="a\"b,c}"} 7 1700000000000
apiserver_request_total_other{verb="GET"} 9
`
	s, err := ParseMetrics([]byte(text), "apiserver_request_total")
	if err != nil {
		t.Fatal(err)
	}
	if len(s) != 2 || s[1].Labels["note"] != `a"b,c}` || s[1].Value != 7 {
		t.Fatalf("parsed %+v", s)
	}
	total, per := Sum(s, func(l map[string]string) bool { return l["resource"] == "deployments" }, "verb")
	if total != 42 || per["GET"] != 42 {
		t.Errorf("sum %v %v", total, per)
	}
}

func TestParseGoBench(t *testing.T) {
	out := `goos: linux
BenchmarkHandle-2   	    4000	    301234 ns/op	   90000 B/op	    1600 allocs/op
BenchmarkHandle-2   	    4000	    299000 ns/op	   90000 B/op	    1602 allocs/op
BenchmarkHandle-2   	    4000	    310000 ns/op	   90000 B/op	    1601 allocs/op
BenchmarkApply/memory-2 	 10	 1000 ns/op	 250.5 MB/s
BenchmarkReload-2 	 1	 400000000 ns/op	 380.0 p50-ms
PASS`
	g := ParseGoBench([]byte(out))
	if v, _ := g.Median("BenchmarkHandle", "ns/op"); v != 301234 {
		t.Errorf("median ns/op %v", v)
	}
	if v, _ := g.Median("BenchmarkApply/memory", "MB/s"); v != 250.5 {
		t.Errorf("MB/s %v", v)
	}
	if _, ok := g.Median("BenchmarkReload", "p95-ms"); ok {
		t.Error("p95-ms should be missing")
	}
}

func TestTable(t *testing.T) {
	tb := Table{Header: []string{"a", "b"}}
	tb.Add("≤ 1", "x")
	got := tb.String()
	if !strings.Contains(got, "| ≤ 1 | x |") || !strings.Contains(got, "| --- | - |") {
		t.Errorf("table:\n%s", got)
	}
}
