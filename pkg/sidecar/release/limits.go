package release

import (
	"time"

	"github.com/aether-dev/aether-devhot/pkg/sidecar"
)

// Defaults of Limits, used for every zero field.
const (
	// DefaultMaxBytes bounds both the download and the extracted total.
	DefaultMaxBytes = sidecar.DefaultMaxArtifactBytes
	// DefaultMaxEntries bounds the tar entries; a big node_modules has tens
	// of thousands.
	DefaultMaxEntries = 100000
	// DefaultMaxRatio bounds extracted/compressed bytes. Source code
	// compresses about 4-10:1; gzip's ceiling is about 1030:1.
	DefaultMaxRatio int64 = 200
	// DefaultTimeout bounds one whole download.
	DefaultTimeout = 5 * time.Minute
	// DefaultInstallTimeout bounds an install of a release's dependencies
	// by the app's package manager (docs/dependencies.md).
	DefaultInstallTimeout = 10 * time.Minute
)

// Caps on every entry's path, whatever the Limits. The kernel refuses a
// name component over 255 bytes anyway; the depth cap also keeps each
// directory's creation cheap, since os.Root walks every parent of a path.
// A pnpm node_modules is about 12 levels deep and 200 bytes long.
const (
	// MaxPathDepth caps the components of an entry's path.
	MaxPathDepth = 64
	// MaxPathBytes caps the length of an entry's path.
	MaxPathBytes = 1024
	// MaxNameBytes caps one component of an entry's path (NAME_MAX).
	MaxNameBytes = 255
)

// BlockSize is what each entry costs against MaxBytes at least, and what
// a file's size is rounded up to: about what it takes on disk, so that
// directories and empty files cannot fill the volume for free.
const BlockSize = 4096

// ratioFloor is how many bytes may be extracted before MaxRatio applies, so
// that small, highly compressible artifacts (a few KiB of JSON) pass.
const ratioFloor = 8 << 20

// Limits bound what one Apply may consume, so that a hostile or broken
// artifact cannot fill the shared volume or hold the fetcher forever.
type Limits struct {
	// MaxBytes caps the compressed download, the uncompressed tar stream,
	// and what the release takes on disk: each file its size rounded up
	// to BlockSize, each directory made and each other entry a block
	// (AETHER_MAX_ARTIFACT_BYTES).
	MaxBytes int64
	// MaxEntries caps the number of tar entries of any kind.
	MaxEntries int
	// MaxRatio caps uncompressed/compressed bytes once ratioFloor bytes have
	// been uncompressed.
	MaxRatio int64
	// Timeout caps the whole download, from request to last byte.
	Timeout time.Duration
	// InstallTimeout caps the wait for the running app to install a
	// staged release's dependencies.
	InstallTimeout time.Duration
}

// withDefaults fills every zero or negative field with its default.
func (l Limits) withDefaults() Limits {
	if l.MaxBytes <= 0 {
		l.MaxBytes = DefaultMaxBytes
	}
	if l.InstallTimeout <= 0 {
		l.InstallTimeout = DefaultInstallTimeout
	}
	if l.MaxEntries <= 0 {
		l.MaxEntries = DefaultMaxEntries
	}
	if l.MaxRatio <= 0 {
		l.MaxRatio = DefaultMaxRatio
	}
	if l.Timeout <= 0 {
		l.Timeout = DefaultTimeout
	}
	return l
}
