package refresh

import (
	"bytes"
	"reflect"
	"slices"
	"strings"
	"testing"
	"time"

	corev1 "k8s.io/api/core/v1"
	eventsv1 "k8s.io/api/events/v1"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
)

const digest = "sha256:d5fbae177b756fa1fcfbf28702342ea7859680db091530030208435a38544417"

// TestString pins the lines of the contract (DESIGN.md "Fetcher", the
// README's examples): what log pipelines match.
func TestString(t *testing.T) {
	for _, c := range []struct {
		r    Record
		want string
	}{
		{Record{Marker: MarkerOK, Digest: digest, Latency: 4 * time.Millisecond, Bytes: 1339, Files: 2, Downloaded: 845},
			"REFRESH_OK digest=" + digest + " latency_ms=4 bytes=1339 files=2 downloaded=845"},
		{Record{Marker: MarkerOK, Digest: digest, Latency: 4900 * time.Microsecond, Bytes: 1, Files: 1, Commit: "0123abc-dirty", BuildTimestamp: "2026-05-01T10:00:00Z"},
			"REFRESH_OK digest=" + digest + " latency_ms=4 bytes=1 files=1 downloaded=0 commit=0123abc-dirty build_timestamp=2026-05-01T10:00:00Z"},
		{Record{Marker: MarkerFail, Reason: ReasonChecksum, Digest: digest, Error: `GET http://s/a.tgz: sha256 is "x"`, Attempt: 1, RetryIn: 713 * time.Millisecond},
			`REFRESH_FAIL reason=checksum digest=` + digest + ` error="GET http://s/a.tgz: sha256 is \"x\"" attempt=1 retry_in_ms=713`},
		{Record{Marker: MarkerFail, Reason: ReasonBadAnnotation, Digest: "sha256:a b", Error: "e", Attempt: 3, GaveUp: true},
			`REFRESH_FAIL reason=bad_annotation digest="sha256:a b" error="e" attempt=3`},
		{Record{Marker: MarkerFail, Reason: ReasonAppCrashed, Digest: digest, Error: "SyntaxError: Unexpected identifier 'oops'\n    at server.js:3", Attempt: 1, GaveUp: true, RolledBackTo: ImageCode},
			`REFRESH_FAIL reason=app_crashed digest=` + digest + ` error="SyntaxError: Unexpected identifier 'oops'\n    at server.js:3" attempt=1 rolled_back_to=image`},
		{Record{Marker: MarkerLive, Digest: digest, Live: 396 * time.Millisecond},
			"REFRESH_LIVE digest=" + digest + " live_ms=396"},
		{Record{Marker: MarkerLive, Digest: digest, Live: 5200 * time.Millisecond, Deps: DepsInstalled, Install: 4100 * time.Millisecond},
			"REFRESH_LIVE digest=" + digest + " live_ms=5200 deps=installed install_ms=4100"},
		{Record{Marker: MarkerLive, Digest: digest, Live: 420 * time.Millisecond, Deps: DepsCached},
			"REFRESH_LIVE digest=" + digest + " live_ms=420 deps=cached"},
		{Record{Marker: MarkerInstall, Digest: digest, Lockfile: "package-lock.json"},
			"REFRESH_INSTALL digest=" + digest + " lockfile=package-lock.json"},
		{Record{Marker: MarkerFail, Reason: ReasonDepsInstall, Digest: digest, Error: "npm ci exited with code 1:\nnpm error 404 Not Found", Attempt: 1, GaveUp: true, RolledBackTo: ImageCode},
			`REFRESH_FAIL reason=deps_install_failed digest=` + digest + ` error="npm ci exited with code 1:\nnpm error 404 Not Found" attempt=1 rolled_back_to=image`},
	} {
		if got := c.r.String(); got != c.want {
			t.Errorf("String()\n got %s\nwant %s", got, c.want)
		}
		var b bytes.Buffer
		if err := Write(&b, c.r); err != nil || b.String() != c.want+"\n" {
			t.Errorf("Write wrote %q, %v", b.String(), err)
		}
	}
}

var (
	deploymentRef = corev1.ObjectReference{Kind: "Deployment", APIVersion: "apps/v1", Namespace: "team-a", Name: "web", UID: "u1"}
	podRef        = corev1.ObjectReference{Kind: "Pod", APIVersion: "v1", Namespace: "team-a", Name: "web-7d9f-x2x"}
)

// TestEvent: an Event carries the record, the stage and the pod in fields,
// for kubectl devhot, and a note for humans; FromEvent takes only the
// fetcher's.
func TestEvent(t *testing.T) {
	now := time.Date(2026, 12, 1, 10, 0, 0, 123456000, time.UTC)
	r := Record{Marker: MarkerFail, Reason: ReasonHTTPStatus, Digest: digest, Error: "GET x: 503", Attempt: 2, RetryIn: time.Second, Commit: "abc"}
	e := NewEvent(r, deploymentRef, podRef, strings.Repeat("n", 2000), now)
	if e.Reason != EventFailed || e.Type != corev1.EventTypeWarning || e.Action != ActionPublish || e.Regarding != deploymentRef ||
		e.Related == nil || *e.Related != podRef || e.ReportingController != ReportingController || e.ReportingInstance != podRef.Name ||
		!e.EventTime.Time.Equal(now) || e.Namespace != "team-a" || !strings.HasPrefix(e.Name, "web.") || len(e.Note) > maxNote+len("…") {
		t.Fatalf("event %+v", e)
	}
	got, pod, ok := FromEvent(e)
	if !ok || pod != podRef.Name || !reflect.DeepEqual(got, r) {
		t.Fatalf("FromEvent: %+v %s %v, want %+v", got, pod, ok, r)
	}
	if l := NewEvent(Record{Marker: MarkerLive, Digest: digest}, deploymentRef, podRef, "", now); l.Reason != EventLive || l.Action != ActionLoad || l.Type != corev1.EventTypeNormal {
		t.Errorf("live event %+v", l)
	}
	if l := NewEvent(Record{Marker: MarkerInstall, Digest: digest, Lockfile: "yarn.lock"}, deploymentRef, podRef, "", now); l.Reason != EventInstall || l.Action != ActionInstall || l.Type != corev1.EventTypeNormal {
		t.Errorf("install event %+v", l)
	}
	for name, edit := range map[string]func(e *eventsv1.Event){
		"another controller": func(e *eventsv1.Event) { e.ReportingController = "the-app" },
		"no record":          func(e *eventsv1.Event) { delete(e.Annotations, annotations.Refresh) },
		"reason and record disagree": func(e *eventsv1.Event) {
			e.Reason = EventLive
		},
		"not a refresh line": func(e *eventsv1.Event) { e.Annotations[annotations.Refresh] = "hello" },
	} {
		e := NewEvent(r, deploymentRef, podRef, "", now)
		edit(e)
		if _, _, ok := FromEvent(e); ok {
			t.Errorf("%s: FromEvent took it", name)
		}
	}
	if got := EventSelector("web"); got != "regarding.kind=Deployment,regarding.name=web,reportingController=aether.dev/fetcher" {
		t.Errorf("EventSelector: %s", got)
	}
}

// FuzzParse checks that Parse never panics, keeps to the enum, and that a
// well-formed record survives String and an Event unchanged. Run it with
// go test -fuzz=FuzzParse ./pkg/refresh.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		"REFRESH_OK digest=" + digest + " latency_ms=312 bytes=1339 files=2 downloaded=845 commit=abc build_timestamp=2026-03-04T05:00:00Z",
		`REFRESH_FAIL reason=checksum digest=` + digest + ` error="a \"b\"\n\u00ab" attempt=1 retry_in_ms=713`,
		"REFRESH_LIVE digest=" + digest + " live_ms=396",
		`REFRESH_FAIL reason=x digest= error="unterminated`,
		`time=2026-03-04T05:06:07.123Z level=INFO msg="watching" deployment=web`,
		"REFRESH_OK",
		"",
	} {
		f.Add(seed)
	}
	f.Fuzz(func(t *testing.T, line string) {
		r, ok := Parse(line)
		if !ok {
			return
		}
		if r.Marker == MarkerFail && r.Reason != ReasonUnknown && !slices.Contains(Reasons(), r.Reason) {
			t.Fatalf("reason %q is outside the enum", r.Reason)
		}
		if r.Latency < 0 || r.RetryIn < 0 || r.Live < 0 || r.Install < 0 || r.Bytes < 0 || r.Files < 0 || r.Downloaded < 0 || r.Attempt < 0 {
			t.Fatalf("negative field in %+v", r)
		}
		if len(r.Malformed) > 0 {
			return
		}
		back, ok := Parse(r.String())
		if !ok || !reflect.DeepEqual(back, r) {
			t.Fatalf("%q -> %q -> %+v", line, r.String(), back)
		}
		fromEvent, _, ok := FromEvent(NewEvent(r, deploymentRef, podRef, "", time.Now()))
		if !ok || !reflect.DeepEqual(fromEvent, r) {
			t.Fatalf("through an Event: %+v, want %+v", fromEvent, r)
		}
	})
}

// FuzzWrite builds records from fuzzed fields and checks Parse(String(r)) ==
// r for every record the fetcher can write.
func FuzzWrite(f *testing.F) {
	f.Add(uint8(0), digest, int64(4), int64(1339), int64(2), int64(845), uint8(4), "GET x: 503", int64(1), false, "", "abc", "2026-05-01T10:00:00Z")
	f.Add(uint8(1), "sha256:a b", int64(0), int64(0), int64(0), int64(0), uint8(0), "line\nbreak \"q\" ✓", int64(9), true, ImageCode, "", "")
	f.Fuzz(func(t *testing.T, marker uint8, dig string, ms, bytes, files, downloaded int64, reason uint8, errText string, attempt int64, gaveUp bool, rolledBackTo, commit, built string) {
		if dig == "" || ms < 0 || ms > maxMillis || bytes < 0 || files < 0 || downloaded < 0 || attempt < 0 {
			return // the fetcher never writes these
		}
		r := Record{Marker: []Marker{MarkerOK, MarkerFail, MarkerLive, MarkerInstall}[marker%4], Digest: dig, Commit: commit, BuildTimestamp: built}
		d := time.Duration(ms) * time.Millisecond
		switch r.Marker {
		case MarkerOK:
			r.Latency, r.Bytes, r.Files, r.Downloaded = d, bytes, files, downloaded
		case MarkerFail:
			r.Reason, r.Error, r.Attempt, r.GaveUp, r.RolledBackTo = Reasons()[int(reason)%len(Reasons())], errText, attempt, gaveUp, rolledBackTo
			if !gaveUp {
				r.RetryIn = d
			}
		case MarkerLive:
			r.Live = d
			r.Deps = []Deps{"", DepsImage, DepsCached, DepsInstalled}[int(reason)%4]
			if r.Deps == DepsInstalled {
				r.Install = d
			}
		case MarkerInstall:
			r.Lockfile = rolledBackTo
			if r.Lockfile == "" {
				return // the fetcher always names it
			}
		}
		back, ok := Parse(r.String())
		if !ok || !reflect.DeepEqual(back, r) {
			t.Fatalf("%+v -> %q -> %+v", r, r.String(), back)
		}
	})
}
