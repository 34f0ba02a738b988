// Package refresh owns the record of one refresh: the contract between the
// fetcher, which writes it, and the tools that read it. It is written as a
// REFRESH_* log line (logfmt, one per refresh) that fleet metrics parse from
// the fetcher's log, and as an Event on the Deployment that kubectl devhot
// reads. Both sides import this package, so a field or a word is spelled
// in one place, and nothing parses the fetcher's prose.
package refresh

import (
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"
)

// Marker is the bare word that starts a refresh log line.
type Marker string

// The markers (DESIGN.md "Fetcher").
const (
	// MarkerOK: a release was published.
	MarkerOK Marker = "REFRESH_OK"
	// MarkerFail: a refresh failed; Reason says why.
	MarkerFail Marker = "REFRESH_FAIL"
	// MarkerLive: the app has loaded the release.
	MarkerLive Marker = "REFRESH_LIVE"
	// MarkerInstall: the release was published, and the app's package
	// manager installs its dependencies before its code starts.
	MarkerInstall Marker = "REFRESH_INSTALL"
)

// The keys of a refresh line.
const (
	KeyDigest         = "digest"
	KeyLatency        = "latency_ms"
	KeyBytes          = "bytes"
	KeyFiles          = "files"
	KeyDownloaded     = "downloaded"
	KeyReason         = "reason"
	KeyError          = "error"
	KeyAttempt        = "attempt"
	KeyRetryIn        = "retry_in_ms"
	KeyRolledBackTo   = "rolled_back_to"
	KeyLive           = "live_ms"
	KeyCommit         = "commit"
	KeyBuildTimestamp = "build_timestamp"
	KeyLockfile       = "lockfile"
	KeyDeps           = "deps"
	KeyInstall        = "install_ms"
	KeySource         = "source"
	KeyReused         = "reused"
)

// Source is REFRESH_OK's source: where the release's files came from
// (docs/delta.md).
type Source string

// The values of Source.
const (
	// SourceArchive: the whole .tar.gz was downloaded and extracted.
	SourceArchive Source = "archive"
	// SourceDelta: a delta release, assembled from the files of releases
	// on disk (reused) plus those downloaded.
	SourceDelta Source = "delta"
	// SourceDisk: the release was still on disk and was published again.
	SourceDisk Source = "disk"
)

// Deps is REFRESH_LIVE's deps: how a release that carries a lockfile got
// its dependencies (docs/dependencies.md).
type Deps string

// The values of Deps.
const (
	// DepsImage: the lockfile is the image's; its node_modules serve.
	DepsImage Deps = "image"
	// DepsCached: the pod had installed the lockfile before.
	DepsCached Deps = "cached"
	// DepsInstalled: the pod's package manager installed them now.
	DepsInstalled Deps = "installed"
)

// ImageCode is the value of rolled_back_to that names the image's own
// code (release zero) rather than a release.
const ImageCode = "image"

// required are the keys each marker must have; a line without one is still
// a record, with the key named in Malformed.
var required = map[Marker][]string{
	MarkerOK:      {KeyDigest, KeyLatency, KeyBytes, KeyFiles},
	MarkerFail:    {KeyReason, KeyDigest, KeyError},
	MarkerLive:    {KeyDigest, KeyLive},
	MarkerInstall: {KeyDigest, KeyLockfile},
}

// LatencyBuckets are the buckets of the refresh latency histograms, the
// fetcher's and the fleet's, so that the two can be compared.
var LatencyBuckets = []float64{0.05, 0.1, 0.2, 0.3, 0.4, 0.6, 0.8, 1, 1.5, 2, 3, 5, 10, 20, 30}

// Record is one refresh. Durations are whole milliseconds, as the line
// carries them.
type Record struct {
	Marker Marker
	// Digest is the artifact the record is about, "sha256:<hex>".
	Digest string

	// Latency is MarkerOK's latency_ms: digest seen -> published.
	Latency time.Duration
	// Bytes, Files and Downloaded are MarkerOK's sizes: extracted bytes
	// and files, and bytes downloaded (0 when the release was on disk).
	Bytes, Files, Downloaded int64
	// Source is MarkerOK's source, "" when a fetcher before delta releases
	// wrote the line; Reused is its reused, the files of a delta release
	// taken from a release on disk rather than downloaded.
	Source Source
	Reused int64

	// Reason is MarkerFail's reason, ReasonUnknown when missing or outside
	// the enum.
	Reason Reason
	// Error is MarkerFail's error text.
	Error string
	// Attempt is MarkerFail's count of failures of this digest.
	Attempt int64
	// RetryIn is MarkerFail's retry_in_ms; GaveUp is set instead when the
	// fetcher retries no more until the digest or the URL changes.
	RetryIn time.Duration
	GaveUp  bool
	// RolledBackTo is MarkerFail's rolled_back_to: what the fetcher put
	// back after the app failed on Digest, a digest or ImageCode; "" when
	// it rolled nothing back.
	RolledBackTo string

	// Live is MarkerLive's live_ms: digest seen -> loaded by the app.
	Live time.Duration
	// Deps is MarkerLive's deps, "" for a release without a lockfile;
	// Install is its install_ms, for DepsInstalled.
	Deps    Deps
	Install time.Duration

	// Lockfile is MarkerInstall's lockfile, the one being installed.
	Lockfile string

	// Commit and BuildTimestamp are the optional build annotations.
	Commit, BuildTimestamp string

	// Malformed names, in line order, each key that Parse found missing or
	// unparseable (a reason outside the enum included); nil when well
	// formed. String ignores it.
	Malformed []string
}

// String is the record's line, without a newline: the marker, then
// key=value pairs in a fixed order. The error is always quoted, as the
// contract shows it; other values only when logfmt needs it.
func (r Record) String() string {
	var b strings.Builder
	b.WriteString(string(r.Marker))
	put := func(k, v string) {
		b.WriteByte(' ')
		b.WriteString(k)
		b.WriteByte('=')
		if k == KeyError || needsQuote(v) {
			b.WriteString(strconv.Quote(v))
		} else {
			b.WriteString(v)
		}
	}
	ms := func(d time.Duration) string { return strconv.FormatInt(d.Milliseconds(), 10) }
	n := func(i int64) string { return strconv.FormatInt(i, 10) }
	switch r.Marker {
	case MarkerOK:
		put(KeyDigest, r.Digest)
		put(KeyLatency, ms(r.Latency))
		put(KeyBytes, n(r.Bytes))
		put(KeyFiles, n(r.Files))
		put(KeyDownloaded, n(r.Downloaded))
		if r.Source != "" {
			put(KeySource, string(r.Source))
		}
		if r.Source == SourceDelta {
			put(KeyReused, n(r.Reused))
		}
	case MarkerFail:
		put(KeyReason, string(r.Reason))
		put(KeyDigest, r.Digest)
		put(KeyError, r.Error)
		put(KeyAttempt, n(r.Attempt))
		if !r.GaveUp {
			put(KeyRetryIn, ms(r.RetryIn))
		}
		if r.RolledBackTo != "" {
			put(KeyRolledBackTo, r.RolledBackTo)
		}
	case MarkerLive:
		put(KeyDigest, r.Digest)
		put(KeyLive, ms(r.Live))
		if r.Deps != "" {
			put(KeyDeps, string(r.Deps))
		}
		if r.Install > 0 {
			put(KeyInstall, ms(r.Install))
		}
	case MarkerInstall:
		put(KeyDigest, r.Digest)
		put(KeyLockfile, r.Lockfile)
	}
	if r.Commit != "" {
		put(KeyCommit, r.Commit)
	}
	if r.BuildTimestamp != "" {
		put(KeyBuildTimestamp, r.BuildTimestamp)
	}
	return b.String()
}

// Write writes r's line and a newline in one Write, so that a writer shared
// with other log lines never interleaves them.
func Write(w io.Writer, r Record) error {
	_, err := io.WriteString(w, r.String()+"\n")
	return err
}

func needsQuote(v string) bool {
	if v == "" {
		return true
	}
	for _, c := range v {
		if c == '=' || c == '"' || c == '\\' || unicode.IsSpace(c) || !unicode.IsPrint(c) {
			return true
		}
	}
	return false
}

// maxMillis keeps a *_ms value inside time.Duration.
const maxMillis = math.MaxInt64 / int64(time.Millisecond)

// Parse reads one refresh line (without a log pipeline's timestamp). It
// reports false for every line that is not one: other log lines, blank
// lines, lookalikes such as "REFRESH_OKAY". A line that starts with a
// marker is always a record, even when damaged (the marker word alone
// proves the refresh happened), and its damage is listed in Malformed. A
// repeated key takes its last value; unknown keys are ignored, so that a
// newer fetcher can add fields.
func Parse(line string) (Record, bool) {
	line = strings.TrimRight(line, "\r\n")
	word, rest, _ := strings.Cut(line, " ")
	m := Marker(word)
	keys, ok := required[m]
	if !ok {
		return Record{}, false
	}
	r := Record{Marker: m}
	seen := map[string]bool{}
	note := func(k string) {
		if !slices.Contains(r.Malformed, k) {
			r.Malformed = append(r.Malformed, k)
		}
	}
	p := pairs{rest: rest}
	for p.next() {
		seen[p.key] = true
		if !r.set(p.key, p.value) {
			note(p.key)
		}
	}
	if p.err != nil {
		// Nothing after a broken quote can be trusted to be a field.
		note(p.key)
	}
	for _, k := range keys {
		if !seen[k] {
			note(k)
		}
	}
	if m == MarkerFail {
		r.GaveUp = !seen[KeyRetryIn]
		if r.Reason == "" {
			r.Reason = ReasonUnknown
		}
	}
	return r, true
}

// set stores one field of r's marker and reports whether v was valid. Keys
// that do not belong to the marker are ignored.
func (r *Record) set(k, v string) bool {
	var ok bool
	switch {
	case k == KeyDigest:
		r.Digest, ok = v, v != ""
	case k == KeyCommit:
		r.Commit, ok = v, true
	case k == KeyBuildTimestamp:
		r.BuildTimestamp, ok = v, true
	case r.Marker == MarkerOK && k == KeyLatency:
		r.Latency, ok = millis(v)
	case r.Marker == MarkerOK && k == KeyBytes:
		r.Bytes, ok = count(v)
	case r.Marker == MarkerOK && k == KeyFiles:
		r.Files, ok = count(v)
	case r.Marker == MarkerOK && k == KeyDownloaded:
		r.Downloaded, ok = count(v)
	case r.Marker == MarkerOK && k == KeySource:
		r.Source, ok = "", false
		if slices.Contains([]Source{SourceArchive, SourceDelta, SourceDisk}, Source(v)) {
			r.Source, ok = Source(v), true
		}
	case r.Marker == MarkerOK && k == KeyReused:
		r.Reused, ok = count(v)
	case r.Marker == MarkerFail && k == KeyReason:
		r.Reason, ok = ReasonUnknown, false
		if slices.Contains(Reasons(), Reason(v)) {
			r.Reason, ok = Reason(v), true
		}
	case r.Marker == MarkerFail && k == KeyError:
		r.Error, ok = v, true
	case r.Marker == MarkerFail && k == KeyAttempt:
		r.Attempt, ok = count(v)
	case r.Marker == MarkerFail && k == KeyRetryIn:
		r.RetryIn, ok = millis(v)
	case r.Marker == MarkerFail && k == KeyRolledBackTo:
		r.RolledBackTo, ok = v, v != ""
	case r.Marker == MarkerLive && k == KeyLive:
		r.Live, ok = millis(v)
	case r.Marker == MarkerLive && k == KeyDeps:
		r.Deps, ok = "", false
		if slices.Contains([]Deps{DepsImage, DepsCached, DepsInstalled}, Deps(v)) {
			r.Deps, ok = Deps(v), true
		}
	case r.Marker == MarkerLive && k == KeyInstall:
		r.Install, ok = millis(v)
	case r.Marker == MarkerInstall && k == KeyLockfile:
		r.Lockfile, ok = v, v != ""
	default:
		ok = true
	}
	return ok
}

// count parses a non-negative decimal integer.
func count(v string) (int64, bool) {
	// ParseInt alone would take "+1" and "-0".
	if v == "" || v[0] < '0' || v[0] > '9' {
		return 0, false
	}
	n, err := strconv.ParseInt(v, 10, 64)
	if err != nil {
		return 0, false
	}
	return n, true
}

func millis(v string) (time.Duration, bool) {
	n, ok := count(v)
	if !ok || n > maxMillis {
		return 0, false
	}
	return time.Duration(n) * time.Millisecond, true
}
