package release

import (
	"bufio"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"unicode/utf8"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// userAgent names the fetcher in artifact servers' logs.
const userAgent = "aether-devhot-fetcher"

// Result describes a published release, for the REFRESH_OK line.
type Result struct {
	// Digest is the published digest, "sha256:<hex>".
	Digest string
	// Bytes is the total size of the extracted files.
	Bytes int64
	// Files is the number of extracted regular files.
	Files int
	// Downloaded is every byte received: the .tar.gz, or a delta
	// release's root, parts and files; 0 when the release was still on
	// disk and was published again without a download.
	Downloaded int64
	// Source is where the files came from: the archive, a delta release
	// (docs/delta.md), or the disk.
	Source refresh.Source
	// Reused is how many files of a delta release were taken from a
	// release on disk rather than downloaded.
	Reused int
	// Deps is what the running app did for the release's dependencies
	// before it was published (preinstall); nil when it did nothing, and
	// the release's own process gets them as it starts.
	Deps *Deps
}

// ApplyOption configures one Apply.
type ApplyOption func(*applyOptions)

// applyOptions is what the ApplyOptions of one Apply set.
type applyOptions struct {
	// pullSecrets: WithPullSecrets.
	pullSecrets string
	// installing: WithInstalling.
	installing func(Deps)
}

// Apply makes t the live release. It streams t's .tar.gz (from t.URL, or
// the one layer of the OCI artifact t.OCI: openOCI) through sha256 and
// gunzip+tar into a staging directory under releases/, and publishes only if
// the sha256 of every downloaded byte equals t.Hex: rename to releases/<hex>,
// flip current, touch boot.cjs in place, prune to the last 3 releases.
// Before the download it prunes to 2, the live and the pinned release
// always among them, so that the volume needs room for 3 (DESIGN.md:
// "prune runs before extract").
//
// On any failure the previous release keeps serving and the error is an
// *Error; the staging directory is removed in the background (Wait), so
// that Apply returns at once. Cancelling ctx (a newer digest arrived) stops
// the download and the extraction within milliseconds, with
// refresh.ReasonDownload and an error that carries ctx's cause. A full
// volume is refresh.ReasonSizeLimit, after which older releases are pruned
// down to the live and the pinned one; when there were none left to prune
// the error is Final. A digest still kept under releases/ is published
// again without a download, so rolling back is instant; applying the live
// digest changes nothing and does not restart the app.
//
// A release that carries a lockfile whose dependencies the pod has not got
// yet is held back while the running app installs them (preinstall), so
// that it serves until they are there; a failed install is final, with
// the dependency step's reason, and nothing is published.
//
// client should come from NewHTTPClient; zero fields of lim take defaults.
func (w *Workspace) Apply(ctx context.Context, client *http.Client, t annotations.Target, lim Limits, opts ...ApplyOption) (Result, error) {
	var o applyOptions
	for _, f := range opts {
		f(&o)
	}
	if !digest.IsHex(t.Hex) || t.Digest != digest.Prefix+t.Hex || (t.URL == nil) == (t.OCI == nil) {
		return Result{}, &Error{Reason: refresh.ReasonBadAnnotation, Err: fmt.Errorf("target %q was not made by annotations.ParseTarget", t.Digest), Final: true}
	}
	lim = lim.withDefaults()
	if res, ok, err := w.republish(ctx, t); ok {
		return res, err
	}
	if err := w.makeRoom(ctx); err != nil {
		return Result{}, err
	}
	staging, err := os.MkdirTemp(w.releases, tempPrefix+"staging-")
	if err != nil {
		return Result{}, w.volumeFull(extractError(err))
	}
	res, err := w.stage(ctx, client, t, lim, o, staging)
	if err != nil {
		w.discard(staging)
		return res, w.volumeFull(err)
	}
	lockfile, key, err := linkDeps(staging)
	if err != nil {
		w.discard(staging)
		return res, newError(refresh.ReasonPublish, fmt.Errorf("link the dependencies' node_modules: %w", err))
	}
	if key != "" {
		if res.Deps, err = w.preinstall(ctx, staging, lockfile, key, lim.InstallTimeout, o); err != nil {
			w.discard(staging)
			return res, err
		}
	}
	if err := w.publish(ctx, staging, t.Hex); err != nil {
		w.discard(staging)
		return res, err
	}
	return res, nil
}

// stage downloads t into the new directory staging.
func (w *Workspace) stage(ctx context.Context, client *http.Client, t annotations.Target, lim Limits, o applyOptions, staging string) (Result, error) {
	if err := os.Chmod(staging, dirMode); err != nil {
		return Result{}, extractError(err)
	}
	return w.download(ctx, client, t, lim, o, staging)
}

// makeRoom prunes to one release fewer than are kept, then waits until
// what it and earlier Applies removed is gone, so that the one in flight
// fits in the room that the volume was sized for.
func (w *Workspace) makeRoom(ctx context.Context) error {
	w.mu.Lock()
	w.prune(w.currentHex(), sidecar.KeepReleases-1)
	w.mu.Unlock()
	if err := w.Wait(ctx); err != nil {
		return newError(refresh.ReasonDownload, fmt.Errorf("not started: %w", err))
	}
	return nil
}

// volumeFull answers an error that says the volume is full by pruning every
// release but the live and the pinned one, and says what that did. Other
// errors are returned as they are.
func (w *Workspace) volumeFull(err error) error {
	e, ok := errors.AsType[*Error](err)
	if !ok || !e.volumeFull {
		return err
	}
	w.mu.Lock()
	removed := w.prune(w.currentHex(), 0)
	w.mu.Unlock()
	if removed > 0 {
		return &Error{Reason: e.Reason, Err: fmt.Errorf("the workspace volume is full (%w); removed %d older release(s) to make room for the next try", e.Err, removed)}
	}
	return &Error{Reason: e.Reason, Final: true, Err: fmt.Errorf(
		"the workspace volume is full (%w) with only the releases it must keep (the live one and the one to roll back to): give the volume more room (the emptyDir's sizeLimit) or the artifact fewer bytes", e.Err)}
}

// republish publishes releases/<t.Hex> again if it is still on disk; ok
// reports whether it was. The live release is left alone, without a touch,
// because an unchanged digest must not restart the app (H2).
func (w *Workspace) republish(ctx context.Context, t annotations.Target) (res Result, ok bool, err error) {
	dir := filepath.Join(w.releases, t.Hex)
	if !isDir(dir) {
		return Result{}, false, nil
	}
	live := w.currentHex() == t.Hex
	res = Result{Digest: t.Digest, Source: refresh.SourceDisk}
	err = filepath.WalkDir(dir, func(_ string, d fs.DirEntry, err error) error {
		if err != nil || !d.Type().IsRegular() {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		res.Files++
		res.Bytes += fi.Size()
		return nil
	})
	if err != nil {
		return res, true, newError(refresh.ReasonPublish, err)
	}
	if live {
		return res, true, nil
	}
	return res, true, w.publish(ctx, "", t.Hex)
}

// download fetches t into the os.Root at staging and verifies its digest.
// A body that starts with manifest.RootMagic is a delta release's root,
// which assemble takes from there; any other is a .tar.gz.
func (w *Workspace) download(ctx context.Context, client *http.Client, t annotations.Target, lim Limits, o applyOptions, staging string) (Result, error) {
	ctx, cancel := context.WithTimeoutCause(ctx, lim.Timeout,
		fmt.Errorf("download took longer than %s: %w", lim.Timeout, context.DeadlineExceeded))
	defer cancel()
	where := t.String()
	var src io.ReadCloser
	var err error
	if t.OCI != nil {
		src, err = openOCI(ctx, client, t, lim, o)
	} else {
		src, err = get(ctx, client, t.URL.String(), where, "", lim.MaxBytes)
	}
	if err != nil {
		return Result{}, err
	}
	defer src.Close()
	br := bufio.NewReaderSize(src, 64<<10)
	body := &meter{ctx: ctx, r: br, limit: lim.MaxBytes, where: where}
	if head, _ := br.Peek(len(manifest.RootMagic)); manifest.IsRoot(head) {
		if t.OCI != nil {
			return Result{}, newError(refresh.ReasonManifest, fmt.Errorf("%s is a delta release, which needs an artifact URL (aether.dev/artifact-url), not an OCI artifact", where))
		}
		return w.assemble(ctx, client, t, lim, staging, body)
	}
	root, err := os.OpenRoot(staging)
	if err != nil {
		return Result{}, newError(refresh.ReasonExtract, err)
	}
	defer root.Close()

	h := sha256.New()
	hashed := io.TeeReader(body, h)
	x := newExtractor(ctx, root, lim, body)
	xerr := x.extract(hashed)
	// Hash the rest even when the tar ended early or was refused, so that a
	// wrong artifact is reported as a checksum failure rather than as
	// whatever its bytes happened to trip over.
	_, derr := io.Copy(io.Discard, hashed)
	res := Result{Digest: t.Digest, Bytes: x.bytes, Files: x.files, Downloaded: body.n, Source: refresh.SourceArchive}
	if derr != nil {
		// The artifact never arrived whole, so whatever extraction made of
		// the part that did is beside the point.
		return res, derr
	}
	if sum := hex.EncodeToString(h.Sum(nil)); sum != t.Hex {
		err := fmt.Errorf("GET %s: sha256 is %s, want %s", where, sum, t.Hex)
		if xerr != nil {
			err = fmt.Errorf("%w (and the content is broken: %v)", err, xerr)
		}
		return res, newError(refresh.ReasonChecksum, err)
	}
	return res, xerr
}

// get GETs u (shown as where) and returns the body of a 200 answer that
// does not announce more than limit bytes. accept, when not empty, is the
// Accept header.
func get(ctx context.Context, client *http.Client, u, where, accept string, limit int64) (io.ReadCloser, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, newError(refresh.ReasonDownload, err)
	}
	req.Header.Set("User-Agent", userAgent)
	if accept != "" {
		req.Header.Set("Accept", accept)
	}
	resp, err := client.Do(req)
	if err != nil {
		return nil, downloadError(ctx, where, err)
	}
	if resp.StatusCode != http.StatusOK {
		defer resp.Body.Close()
		return nil, newError(refresh.ReasonHTTPStatus, fmt.Errorf("GET %s: %s%s", where, resp.Status, statusReason(resp)))
	}
	if resp.ContentLength > limit {
		resp.Body.Close()
		return nil, newError(refresh.ReasonSizeLimit, fmt.Errorf("GET %s: Content-Length %d is over the limit of %d bytes", where, resp.ContentLength, limit))
	}
	return resp.Body, nil
}

// downloadError reports err, or the reason ctx ended if it has: a timeout or
// a newer digest is more useful than "context canceled" from the transport.
func downloadError(ctx context.Context, where string, err error) *Error {
	if ctx.Err() != nil {
		err = context.Cause(ctx)
	}
	return newError(refresh.ReasonDownload, fmt.Errorf("GET %s: %w", where, err))
}

// meter counts and caps the compressed bytes read from the response body.
// Its error is sticky so that draining after a failure fails the same way.
type meter struct {
	ctx   context.Context
	r     io.Reader
	where string
	n     int64
	limit int64
	err   error
}

func (m *meter) Read(p []byte) (int, error) {
	if m.err == nil && m.ctx.Err() != nil {
		// A body in memory, or already buffered, would read on.
		m.err = downloadError(m.ctx, m.where, m.ctx.Err())
	}
	if m.err != nil {
		return 0, m.err
	}
	n, err := m.r.Read(p)
	m.n += int64(n)
	switch {
	case m.n > m.limit:
		m.err = newError(refresh.ReasonSizeLimit, fmt.Errorf("GET %s: download is over the limit of %d bytes", m.where, m.limit))
	case err == io.EOF:
		return n, err
	case err != nil:
		m.err = downloadError(m.ctx, m.where, err)
	default:
		return n, nil
	}
	return n, m.err
}

// isDir reports whether path is a directory, following symlinks.
func isDir(path string) bool {
	fi, err := os.Stat(path)
	return err == nil && fi.IsDir()
}

// statusReason is the first line of a refusal's body, where the store says
// why (the token it did not accept, the Deployment the pod may not read),
// as ": <line>", at most 200 printable bytes; "" when there is none.
func statusReason(resp *http.Response) string {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	line, _, _ := strings.Cut(string(b), "\n")
	line = strings.Map(func(r rune) rune {
		if r < ' ' || r == 0x7f || r == utf8.RuneError {
			return -1
		}
		return r
	}, strings.TrimSpace(line))
	if len(line) > 200 {
		line = line[:200]
		for !utf8.ValidString(line) {
			line = line[:len(line)-1]
		}
	}
	if line == "" {
		return ""
	}
	return ": " + line
}
