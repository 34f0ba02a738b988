// Package annotations declares every label and annotation key that
// aether-devhot reads or writes, in one place, so that the webhook, the
// reconciler, the fetcher and the CLI agree on the contract of DESIGN.md.
package annotations

const (
	// Prefix is the domain of every key below.
	Prefix = "aether.dev/"

	// DevHot is both the opt-in label that users put on a Deployment and the
	// introspection annotation the webhook sets on the Deployment and its
	// pod template. Only the value "true" opts in; the webhook's objectSelector
	// matches the label on the old or the new object, so removing it is seen
	// and reverted.
	DevHot = Prefix + "dev-hot"

	// DevHotEnabled is the only value of DevHot that opts a Deployment in.
	DevHotEnabled = "true"

	// Digest names the artifact that should be live, as "sha256:<64 hex>".
	// It lives in Deployment metadata, not in the pod template, so changing
	// it reloads code in place instead of rolling the Deployment out.
	Digest = Prefix + "digest"

	// ArtifactURL is the http(s) URL of the .tar.gz whose sha256 is Digest.
	ArtifactURL = Prefix + "artifact-url"

	// UploadDigest is the digest, "sha256:<64 hex>", that `kubectl devhot
	// push` is about to upload to the store for this Deployment. The store
	// accepts an upload only of a digest that a labelled Deployment names
	// here or in Digest, so the right to push is the right to patch the
	// Deployment (docs/store.md), and keeps such a blob from eviction.
	// Push clears it when it sets Digest.
	UploadDigest = Prefix + "upload-digest"

	// Entrypoint is the app's entry script relative to the artifact root.
	// Optional: by default the webhook parses it from the app container's
	// `node ...` command and args, and says so in an admission warning.
	Entrypoint = Prefix + "entrypoint"

	// Container names the app container. Optional: by default the template's
	// kubectl.kubernetes.io/default-container annotation, else the first
	// container.
	Container = Prefix + "container"

	// FetchInitContainer names the initContainer that the fetcher sidecar
	// replaces. Optional: by default the first initContainer, if any.
	FetchInitContainer = Prefix + "fetch-init-container"

	// FetchIntervalSec is the fetcher's resync (watch mode) or poll interval
	// in whole seconds; it becomes the fetcher's AETHER_FETCH_INTERVAL_SEC.
	FetchIntervalSec = Prefix + "fetch-interval-sec"

	// HealthTimeoutSec bounds, in whole seconds, how long a new release has
	// to finish loading and pass the app's probe before the fetcher rolls
	// it back (DefaultHealthTimeoutSec when unset). The fetcher reads it
	// from the Deployment with each digest, so changing it needs no rollout.
	HealthTimeoutSec = Prefix + "health-timeout-sec"

	// CommitSHA is the source commit of the artifact, set by the CLI and
	// carried into the fetcher's log lines and Events.
	CommitSHA = Prefix + "commit-sha"

	// BuildTimestamp is when the artifact was built, set by the CLI and
	// carried into the fetcher's log lines and Events.
	BuildTimestamp = Prefix + "build-timestamp"

	// Injected is the webhook's JSON record of what it injected and what it
	// replaced (the original initContainer, command, args and service
	// account). It lets every admission strip an earlier injection before
	// injecting again, so mutation is idempotent, and lets a label removal
	// restore the original exactly.
	Injected = Prefix + "injected"

	// Refresh is set by the fetcher on each of its Events: the refresh
	// record (package refresh) that the Event reports, in the form of its
	// REFRESH_* log line, so that kubectl devhot reads the digest, the
	// stage and the error without parsing the message.
	Refresh = Prefix + "refresh"
)

// DefaultContainer is the well-known pod-template annotation kubectl uses to
// pick a container; the webhook honours it when Container is not set.
const DefaultContainer = "kubectl.kubernetes.io/default-container"
