package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	appsv1 "k8s.io/api/apps/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/types"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"
	"k8s.io/client-go/kubernetes"
	"k8s.io/client-go/rest"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/pack"
	"github.com/aether-dev/aether-devhot/pkg/project"
	"github.com/aether-dev/aether-devhot/pkg/store"
)

// Defaults of the in-cluster store that the chart installs as release
// aether-devhot in namespace aether-system, the README's install; a test
// reads them back from deploy/aether-devhot.yaml, that install's render.
const (
	defaultStoreNamespace = "aether-system"
	defaultStoreService   = "aether-devhot-store"
	// storePortName is the Service port the API server proxies to.
	storePortName = "http"
)

type pushOptions struct {
	watch              bool
	dryRun             bool
	includeNodeModules bool
	archive            bool
	store              string
	to                 string
	artifactBaseURL    string
	storeNamespace     string
	storeService       string
	timeout            time.Duration
	builds             buildFlags
}

func newPushCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	o := pushOptions{}
	cmd := &cobra.Command{
		Use:   "push DEPLOYMENT [DIR]",
		Short: "Pack DIR, upload it, and wait until every pod of DEPLOYMENT runs it",
		Long: `Pack DIR (default .) into a delta release, leaving out .git, node_modules,
what the .gitignore files and .devhotignore list, and files that look like
secrets (.env*, .npmrc, *.pem, *.key, id_*) unless .devhotignore names them;
upload to the artifact store the files it lacks, and only those; annotate the
Deployment with the release's digest and URL; and wait until each pod's fetcher reports that the app runs it, or that
the app failed on it and what it rolled back to (then push exits 1). Each pod
downloads only the files its last release lacks (docs/delta.md); --archive
pushes one deterministic .tar.gz instead, which every pod downloads whole. An
unchanged tree changes nothing; --dry-run shows what would be packed.
With --to oci://<registry>/<repo> it pushes an OCI artifact to that registry
instead of the store, and the pods pull it by digest (docs/oci.md).

A compiled project runs its build first (--build) and pushes its output
(--out), or declares both once in DIR/devhot.yaml (build, out, watchBuild).

With --watch it pushes again on every change under DIR, until Ctrl-C: after
running --build again, or, with --watch-build, whenever the long-running build
changes something under --out.`,
		Example: `  kubectl devhot push deploy/web ./app
  kubectl devhot push web ./app --dry-run
  kubectl devhot push web --watch
  kubectl devhot push web ./api --build 'npm run build' --out dist
  kubectl devhot push web ./api --watch --watch-build 'npx tsc --watch --preserveWatchOutput' --out dist
  kubectl devhot push web ./app --store http://localhost:8080
  kubectl devhot push web ./app --to oci://ghcr.io/org/web`,
		Args: cobra.RangeArgs(1, 2),
		RunE: func(cmd *cobra.Command, args []string) error {
			name, err := deploymentName(args[0])
			if err != nil {
				return err
			}
			dir := "."
			if len(args) == 2 {
				dir = args[1]
			}
			proj, err := projectConfig(dir, o.builds, cmd.Flags())
			if err != nil {
				return err
			}
			if o.to != "" && (o.store != "" || o.artifactBaseURL != "") {
				return fmt.Errorf("--to and --store or --artifact-base-url do not go together: --to pushes to a registry, not the store")
			}
			if proj.WatchBuild != "" && !o.watch {
				// Outside --watch a watch build would never end: build once.
				proj.WatchBuild = ""
			}
			if o.dryRun {
				if o.watch {
					return fmt.Errorf("--dry-run and --watch do not go together")
				}
				return dryRun(streams.Out, dir, packOptions(proj, o.includeNodeModules), o.archive || o.to != "")
			}
			p, err := newPusher(flags, o, name, dir, streams.Out)
			if err != nil {
				return err
			}
			p.proj = proj
			if o.watch {
				return p.watch(cmd.Context())
			}
			_, err = p.push(cmd.Context(), time.Now())
			return err
		},
	}
	f := cmd.Flags()
	f.BoolVarP(&o.watch, "watch", "w", false, "push again on every change under DIR, until interrupted")
	f.BoolVar(&o.dryRun, "dry-run", false, "list what would be packed, with sizes, and what is left out and why; upload nothing")
	f.BoolVar(&o.includeNodeModules, "include-node-modules", false, "pack node_modules directories too")
	f.BoolVar(&o.archive, "archive", false, "push the whole tree as one .tar.gz, as kubectl annotate users do, instead of a delta release (--to always does)")
	f.StringVar(&o.store, "store", "", "upload straight to this store URL instead of through the API server's service proxy")
	f.StringVar(&o.to, "to", "", "push to an OCI registry instead of the store, oci://<registry>/<repo>[:tag] (default tag devhot-<digest>), with your docker login; pods pull it with their imagePullSecrets")
	f.StringVar(&o.artifactBaseURL, "artifact-base-url", "",
		"the store's URL as the pods reach it, for aether.dev/artifact-url (default: the in-cluster Service, or --store when given)")
	f.StringVar(&o.storeNamespace, "store-namespace", defaultStoreNamespace, "namespace of the store's Service")
	f.StringVar(&o.storeService, "store-service", defaultStoreService, "name of the store's Service")
	o.timeout = 2 * time.Minute
	f.Var(bounds.DurationFlag{P: &o.timeout, Range: deliverTimeoutRange}, "timeout", "how long one push waits for every pod to go live or fail on the new code ("+deliverTimeoutRange.String()+")")
	o.builds.add(f)
	return cmd
}

// pusher pushes one directory to one Deployment.
type pusher struct {
	o            pushOptions
	c            *cluster
	name, dir    string
	store        *store.Client
	artifactBase string
	out          io.Writer
	// proj is how the project builds and what is packed (devhot.yaml and
	// the flags); under a watch build, push packs what it made.
	proj project.Config
	// hashes are the files' sha256 from earlier pushes, for delta releases.
	hashes pack.Hashes
}

func newPusher(flags *genericclioptions.ConfigFlags, o pushOptions, name, dir string, out io.Writer) (*pusher, error) {
	c, err := connect(flags)
	if err != nil {
		return nil, err
	}
	// The webhook repeats its admission warnings (entry parsed, sidecar
	// mode) on every annotation; enable has shown them already.
	quiet := rest.CopyConfig(c.config)
	quiet.WarningHandler = rest.NoWarnings{}
	if c.client, err = kubernetes.NewForConfig(quiet); err != nil {
		return nil, err
	}
	p := &pusher{o: o, c: c, name: name, dir: dir, out: out}
	if o.store != "" {
		p.store = &store.Client{HTTP: &http.Client{Timeout: 5 * time.Minute}, Base: o.store}
		p.artifactBase = o.store
	} else {
		// The user's own credentials and RBAC (services/proxy) decide who
		// may push; no ingress or port-forward is needed.
		hc, err := rest.HTTPClientFor(c.config)
		if err != nil {
			return nil, err
		}
		p.store = &store.Client{HTTP: hc, Base: fmt.Sprintf("%s/api/v1/namespaces/%s/services/%s:%s/proxy",
			strings.TrimSuffix(c.config.Host, "/"), o.storeNamespace, o.storeService, storePortName)}
		p.artifactBase = artifactBase(o.storeNamespace, o.storeService)
	}
	if o.artifactBaseURL != "" {
		p.artifactBase = o.artifactBaseURL
	}
	return p, nil
}

// dryRun prints what push would pack from dir, with the digest it would
// push (the archive's, or the delta release's), and what it would leave
// out and why.
func dryRun(out io.Writer, dir string, o pack.Options, archive bool) error {
	a, err := pack.Dir(dir, o)
	if err != nil {
		return err
	}
	as := fmt.Sprintf("as an archive of %d bytes, %s", len(a.Data), a.Digest)
	if !archive {
		r, err := pack.Delta(dir, o, nil)
		if err != nil {
			return err
		}
		as = fmt.Sprintf("as a delta release of %d parts, %s", len(r.Parts), r.Digest)
	}
	w := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	fmt.Fprintf(w, "would pack %d files, %d bytes, %s:\n", a.Files, a.Bytes, as)
	for _, f := range a.Packed {
		fmt.Fprintf(w, "  %s\t%d\n", f.Path, f.Size)
	}
	if len(a.Left) > 0 {
		fmt.Fprintf(w, "would leave out:\n")
	}
	for _, l := range a.Left {
		name := l.Path
		if l.IsDir {
			name += "/"
		}
		fmt.Fprintf(w, "  %s\t%s\n", name, l.Why)
	}
	return w.Flush()
}

// artifactBase is the store's URL as pods reach it, by the Service's DNS
// name. The chart gives the webhook the same as --store-url for its
// default release, so that the fetchers show their store token to the URLs
// push writes.
func artifactBase(namespace, service string) string {
	return fmt.Sprintf("http://%s.%s.svc", service, namespace)
}

// pushResult is what one push did.
type pushResult struct {
	digest    string
	unchanged bool
}

// push packs, uploads, annotates and waits. started is when the change
// began (the save, under --watch); latencies are reported from there.
func (p *pusher) push(ctx context.Context, started time.Time) (pushResult, error) {
	if p.proj.Build != "" && p.proj.WatchBuild == "" {
		if err := runBuild(ctx, p.dir, p.proj.Build); err != nil {
			return pushResult{}, err
		}
	}
	rel, err := p.pack()
	if err != nil {
		return pushResult{}, err
	}
	d, err := p.c.deployment(ctx, p.name)
	if err != nil {
		return pushResult{}, err
	}
	if d.Labels[annotations.DevHot] != annotations.DevHotEnabled {
		return pushResult{}, fmt.Errorf("deployment %s is not labelled %s=true: run `kubectl devhot enable %s` first", p.name, annotations.DevHot, p.name)
	}
	if _, ok := d.Annotations[annotations.Injected]; !ok {
		return pushResult{}, fmt.Errorf("deployment %s is labelled but the webhook has not injected the fetcher: is aether-devhot installed?", p.name)
	}
	url, err := p.deposit(ctx, d, rel)
	if err != nil {
		return pushResult{}, err
	}
	if d.Annotations[annotations.Digest] == rel.digest && d.Annotations[annotations.ArtifactURL] == url {
		fmt.Fprintf(p.out, "deployment.apps/%s already has %s: nothing to do\n", p.name, rel.digest)
		return pushResult{digest: rel.digest, unchanged: true}, nil
	}
	r, err := p.c.deliver(ctx, d, rel.digest, url, commitOf(ctx, p.dir), started, p.o.timeout, p.out)
	if err != nil {
		return pushResult{digest: rel.digest}, err
	}
	fmt.Fprintf(p.out, "deployment.apps/%s: %s live on %d/%d pods in %s\n", p.name, rel.digest, len(r.pods), r.count, ms(r.slowest()))
	return pushResult{digest: rel.digest}, nil
}

// packed is the tree one push sends: a whole archive (--archive, --to) or
// a delta release.
type packed struct {
	digest  string
	archive *pack.Artifact
	delta   *pack.Release
}

// pack packs the tree and says what it packed.
func (p *pusher) pack() (packed, error) {
	o := packOptions(p.proj, p.o.includeNodeModules)
	var rel packed
	var left []string
	if p.o.archive || p.o.to != "" {
		a, err := pack.Dir(p.dir, o)
		if err != nil {
			return packed{}, err
		}
		rel = packed{digest: a.Digest, archive: a}
		left = a.Secrets()
		fmt.Fprintf(p.out, "packed %s: %d files, %d bytes, %s\n", p.dir, a.Files, len(a.Data), a.Digest)
	} else {
		r, err := pack.Delta(p.dir, o, &p.hashes)
		if err != nil {
			return packed{}, err
		}
		rel = packed{digest: r.Digest, delta: r}
		left = r.Secrets()
		fmt.Fprintf(p.out, "packed %s: %d files, %d bytes, %s (a delta release of %d parts)\n", p.dir, r.Count, r.Bytes, r.Digest, len(r.Parts))
	}
	if len(left) > 0 {
		fmt.Fprintf(p.out, "left out %d that look like secrets: %s (--dry-run says why)\n", len(left), strings.Join(left, ", "))
	}
	return rel, nil
}

// deposit puts the release where the pods fetch it, the store or --to,
// and returns its artifact URL.
func (p *pusher) deposit(ctx context.Context, d *appsv1.Deployment, rel packed) (string, error) {
	if p.o.to != "" {
		return p.pushOCI(ctx, rel.archive)
	}
	ref := store.BlobRef{Namespace: p.c.namespace, Deployment: p.name, Hex: strings.TrimPrefix(rel.digest, digest.Prefix)}
	var err error
	if rel.delta != nil {
		err = p.uploadDelta(ctx, d, rel.delta, ref)
	} else {
		err = p.upload(ctx, d, rel.archive, ref)
	}
	if err != nil {
		return "", err
	}
	return strings.TrimSuffix(p.artifactBase, "/") + ref.Path(), nil
}

// upload puts the artifact in the store unless it is there already.
func (p *pusher) upload(ctx context.Context, d *appsv1.Deployment, a *pack.Artifact, ref store.BlobRef) error {
	if err := p.announce(ctx, d, a.Digest); err != nil {
		return err
	}
	has, err := p.store.Has(ctx, ref)
	if err == nil && !has {
		p.store.Progress = uploadProgress(p.out)
		err = p.store.Put(ctx, ref, a.Data)
	}
	return p.storeError(err)
}

// announce names digest in aether.dev/upload-digest unless the Deployment
// asks for it already: the store takes only what a Deployment asks for,
// so the right to push is the right to patch the Deployment
// (docs/store.md).
func (p *pusher) announce(ctx context.Context, d *appsv1.Deployment, digest string) error {
	if d.Annotations[annotations.Digest] == digest || d.Annotations[annotations.UploadDigest] == digest {
		return nil
	}
	return p.c.patchAnnotations(ctx, p.name, map[string]any{annotations.UploadDigest: digest})
}

// storeError adds what to check to an error of the store reached through
// the API server.
func (p *pusher) storeError(err error) error {
	if err != nil && p.o.store == "" {
		return fmt.Errorf("%w\n(is the store installed? the chart's store.enabled; or pass --store URL)", err)
	}
	return err
}

// annotate sets the digest, URL, commit and build time in one merge
// patch of metadata, and clears the upload digest: no rollout, and one
// event for the fetchers.
func (c *cluster) annotate(ctx context.Context, name, digest, url, commit string) error {
	var commitValue any // null removes a stale commit of an earlier push
	if commit != "" {
		commitValue = commit
	}
	return c.patchAnnotations(ctx, name, map[string]any{
		annotations.Digest:         digest,
		annotations.ArtifactURL:    url,
		annotations.UploadDigest:   nil,
		annotations.CommitSHA:      commitValue,
		annotations.BuildTimestamp: time.Now().UTC().Format(time.RFC3339),
	})
}

// patchAnnotations merge-patches the Deployment's annotations (nil
// removes one).
func (c *cluster) patchAnnotations(ctx context.Context, name string, ann map[string]any) error {
	patch, err := json.Marshal(map[string]any{"metadata": map[string]any{"annotations": ann}})
	if err != nil {
		return err
	}
	_, err = c.client.AppsV1().Deployments(c.namespace).Patch(ctx, name, types.MergePatchType, patch, metav1.PatchOptions{})
	if err != nil {
		return fmt.Errorf("annotate deployment %s: %w", name, err)
	}
	return nil
}
