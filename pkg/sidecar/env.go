package sidecar

import (
	"k8s.io/apimachinery/pkg/api/resource"

	"github.com/aether-dev/aether-devhot/pkg/bounds"
)

// Environment variables of the fetcher. Each has a flag twin of the same
// name in lower case with dashes, without the AETHER_ prefix (for example
// AETHER_FETCH_INTERVAL_SEC and --fetch-interval-sec).
const (
	EnvPodName          = "POD_NAME"
	EnvPodNamespace     = "POD_NAMESPACE"
	EnvDeployment       = "AETHER_DEPLOYMENT"
	EnvWorkspace        = "AETHER_WORKSPACE"
	EnvFetchIntervalSec = "AETHER_FETCH_INTERVAL_SEC"
	EnvFetchMode        = "AETHER_FETCH_MODE"
	EnvMaxRetries       = "AETHER_MAX_RETRIES"
	EnvBackoffMaxSec    = "AETHER_BACKOFF_MAX_SEC"
	EnvMaxArtifactBytes = "AETHER_MAX_ARTIFACT_BYTES"
	EnvCAFile           = "AETHER_CA_FILE"
	EnvMetricsAddr      = "AETHER_METRICS_ADDR"
	// EnvAppProbe is the app container's readiness (or startup) probe,
	// httpGet or tcpSocket, as package probe encodes it: the fetcher runs it
	// on the pod's loopback before it calls a release live.
	EnvAppProbe = "AETHER_APP_PROBE"
	// EnvStoreURL is the artifact store's root URL. The fetcher sends its
	// store token (EnvStoreTokenFile) with a download only when the
	// artifact URL is under it: aether.dev/artifact-url can point anywhere.
	EnvStoreURL = "AETHER_STORE_URL"
	// EnvStoreTokenFile is the file of the token the fetcher shows the
	// store (default StoreTokenFile), read again for every download
	// because the kubelet rotates it.
	EnvStoreTokenFile = "AETHER_STORE_TOKEN_FILE"
	// EnvPullSecretsDir is the directory of the pod's pull secrets (default
	// PullSecretsDir), which authenticate pulls of oci:// artifacts.
	EnvPullSecretsDir = "AETHER_PULL_SECRETS_DIR"

	// EnvEntry is set on the app container, not the fetcher: boot.cjs loads
	// this path, relative to the artifact root.
	EnvEntry = "AETHER_ENTRY"

	// EnvAppDir is set on both containers when the pod runs the image's own
	// code until the first push (release zero): the directory in the app's
	// image that AETHER_ENTRY is relative to, or AppDirWorking when only the
	// app's working directory at start tells. boot.cjs runs release zero
	// from there, and the fetcher links the image's node_modules from there
	// for releases that carry none.
	EnvAppDir = "AETHER_APP_DIR"
)

// AppDirWorking is the value of EnvAppDir that means "the app's working
// directory", which the webhook cannot know without the image's WORKDIR.
const AppDirWorking = "."

// Workspace layout, relative to the workspace root (DESIGN.md "Fetcher").
const (
	// WorkspaceMountPath is where the fetcher always mounts the workspace.
	WorkspaceMountPath = "/workspace"
	// ReleasesDir holds one directory per published digest, named by its hex.
	ReleasesDir = "releases"
	// CurrentLink is the relative symlink to the live release.
	CurrentLink = "current"
	// StateDir holds boot.cjs and the loaded record.
	StateDir = ".aether"
	// BootFile is the stable file that node --watch loads; touching it (same
	// inode) restarts the app exactly once.
	BootFile = StateDir + "/boot.cjs"
	// LoadedFile is written by boot.cjs each time it loads a release.
	LoadedFile = StateDir + "/loaded"
	// WatchedFile is where boot.cjs lists the inodes of the files that
	// `node --watch` watches (package release, watched.go).
	WatchedFile = StateDir + "/watched"
	// ImageModules is the link releases/node_modules to the image's own
	// node_modules, which Node's module resolution finds from every release
	// that carries no node_modules of its own.
	ImageModules = ReleasesDir + "/node_modules"
	// DepsDir caches the dependencies of releases whose lockfile is not the
	// image's: DepsDir/<sha256 of the lockfile>/node_modules, installed in
	// the app's container by its own package manager (docs/dependencies.md).
	// A release that carries a lockfile gets a node_modules link to its
	// entry, ../../DepsDir/<hex>/node_modules.
	DepsDir = StateDir + "/deps"
	// InstallRequestFile is where the fetcher asks the running app to get
	// a staged release's dependencies; InstallResultFile where boot.cjs
	// answers.
	InstallRequestFile = StateDir + "/install"
	InstallResultFile  = StateDir + "/install-result"
)

// Lockfiles are the lockfiles a release may carry beside its package.json,
// in the order they are looked for: the first present decides the package
// manager. boot.cjs holds the same list (a test keeps them equal).
var Lockfiles = []string{"npm-shrinkwrap.json", "package-lock.json", "pnpm-lock.yaml", "yarn.lock"}

// Defaults of the fetcher.
const (
	DefaultFetchIntervalSec = 5
	DefaultMetricsPort      = 9102
	DefaultMetricsAddr      = ":9102"
	// DefaultMaxArtifactBytes bounds both an artifact's download and its
	// extracted total (AETHER_MAX_ARTIFACT_BYTES).
	DefaultMaxArtifactBytes int64 = 512 << 20
	// KeepReleases is how many releases stay on disk, the live one
	// included, so that a quick rollback needs no download.
	KeepReleases = 3
)

// MaxArtifactBytesRange is the range of AETHER_MAX_ARTIFACT_BYTES. Every
// tar entry costs at least a block of 4096 bytes (release.BlockSize), so a
// smaller cap holds nothing. The workspace holds KeepReleases releases
// plus one in flight, and four of 8 GiB is more than a node's ephemeral
// storage gives a dev pod. The store takes no larger blob, since no
// fetcher could download it.
var MaxArtifactBytesRange = bounds.Int{Min: 4096, Max: 8 << 30, Unit: "bytes"}

// WorkspaceSizeLimit is the sizeLimit of the emptyDir the webhook adds:
// the releases kept plus the one being extracted, each at most
// DefaultMaxArtifactBytes.
func WorkspaceSizeLimit() *resource.Quantity {
	return resource.NewQuantity((KeepReleases+1)*DefaultMaxArtifactBytes, resource.BinarySI)
}
