package refresh

// Reason is the closed enum of REFRESH_FAIL reasons (DESIGN.md "Fetcher").
// It is a metric label, so it never carries free text.
type Reason string

// The failure reasons. Every failure the fetcher reports has exactly one.
const (
	// ReasonBadAnnotation: aether.dev/digest or aether.dev/artifact-url is
	// missing or malformed; retrying cannot help until the user fixes it.
	ReasonBadAnnotation Reason = "bad_annotation"
	// ReasonDownload: the request failed, timed out, was redirected to another
	// host, or was cancelled because a newer digest arrived.
	ReasonDownload Reason = "download"
	// ReasonHTTPStatus: the server answered with a status other than 200.
	ReasonHTTPStatus Reason = "http_status"
	// ReasonSizeLimit: the download, the release on disk, the entry count,
	// the compression ratio or a path's length or depth went over the
	// limits, or the workspace volume is full.
	ReasonSizeLimit Reason = "size_limit"
	// ReasonChecksum: the sha256 of the downloaded bytes is not the digest.
	ReasonChecksum Reason = "checksum"
	// ReasonUnsafePath: an entry is absolute, climbs out with "..", or is a
	// symlink or hardlink, any of which could write outside the release.
	ReasonUnsafePath Reason = "unsafe_path"
	// ReasonUnsupportedEntry: a device, fifo, sparse file or other entry that
	// is neither a regular file nor a directory.
	ReasonUnsupportedEntry Reason = "unsupported_entry"
	// ReasonExtract: the bytes are not a valid tar.gz, or writing them failed.
	ReasonExtract Reason = "extract"
	// ReasonPublish: renaming the release, flipping current or touching
	// boot.cjs failed.
	ReasonPublish Reason = "publish"
	// ReasonOCIArtifact: the OCI manifest that aether.dev/artifact-url
	// names is not a release (package oci): another media type, not
	// exactly one layer, or a layer that is not aether.dev/digest. The
	// manifest is named by digest, so retrying cannot help.
	ReasonOCIArtifact Reason = "oci_artifact"
	// ReasonManifest: a delta release's root or one of its parts is not
	// what package manifest writes (docs/delta.md), or lists files that
	// no release could hold; paths that climb out are unsafe_path, a
	// part or file whose bytes have another sha256 is checksum, and a
	// count over the limits is size_limit.
	ReasonManifest Reason = "bad_manifest"

	// The health gate's reasons: the release was published, but the app did
	// not come up on it. The first two fail the release, which is rolled
	// back and not tried again until the digest changes; the third is a
	// live release going down.

	// ReasonAppCrashed: the app threw or exited while it loaded the
	// release, or before the fetcher's probe of it first passed.
	ReasonAppCrashed Reason = "app_crashed"
	// ReasonUnhealthy: the app loaded the release but did not finish
	// loading, or its probe did not pass, within the health timeout.
	ReasonUnhealthy Reason = "unhealthy"
	// ReasonAppDown: the release had gone live, and then the app exited,
	// or its probe kept failing. The fetcher restarts an app that exited,
	// on the same release, with a backoff.
	ReasonAppDown Reason = "app_down"

	// The dependency step's reasons (docs/dependencies.md): the release
	// carries a lockfile that is not the image's, and boot.cjs could not
	// get its dependencies before the entry; the release is rolled back,
	// as for app_crashed.

	// ReasonNoPackageManager: the lockfile's package manager (npm, pnpm,
	// yarn) is not in the app's image.
	ReasonNoPackageManager Reason = "no_package_manager"
	// ReasonDepsInstall: the package manager failed (the registry is
	// unreachable, a package is missing, a build script failed); the
	// error ends with its last lines.
	ReasonDepsInstall Reason = "deps_install_failed"
)

// ReasonUnknown stands for a REFRESH_FAIL reason that is missing or outside
// the enum (a newer fetcher, a damaged line), so that the failure is still
// counted while the label stays low-cardinality. The fetcher never writes it.
const ReasonUnknown Reason = "unknown"

// Reasons returns every Reason the fetcher writes, in the order above: the
// series the fetcher's and the fleet's metrics start at 0.
func Reasons() []Reason {
	return []Reason{
		ReasonBadAnnotation,
		ReasonDownload,
		ReasonHTTPStatus,
		ReasonSizeLimit,
		ReasonChecksum,
		ReasonUnsafePath,
		ReasonUnsupportedEntry,
		ReasonExtract,
		ReasonPublish,
		ReasonOCIArtifact,
		ReasonManifest,
		ReasonAppCrashed,
		ReasonUnhealthy,
		ReasonAppDown,
		ReasonNoPackageManager,
		ReasonDepsInstall,
	}
}
