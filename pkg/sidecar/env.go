package sidecar

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

	// EnvEntry is set on the app container, not the fetcher: boot.cjs loads
	// this path, relative to the artifact root.
	EnvEntry = "AETHER_ENTRY"
)

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
)

// Defaults of the fetcher.
const (
	DefaultFetchIntervalSec = 5
	DefaultMetricsPort      = 9102
	DefaultMetricsAddr      = ":9102"
)
