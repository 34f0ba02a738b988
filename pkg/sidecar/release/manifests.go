package release

import (
	"io"
	"os"
	"path/filepath"

	"github.com/aether-dev/aether-devhot/pkg/digest"
	"github.com/aether-dev/aether-devhot/pkg/manifest"
)

// Where the manifests of delta releases live on the volume, next to
// releases/ and never inside a release, whose tree is the app's files.
const (
	// manifestsDir holds rootsDir and partsDir.
	manifestsDir = "manifests"
	// rootsDir holds <hex>, the root of the delta release releases/<hex>
	// (or of one being assembled).
	rootsDir = manifestsDir + "/roots"
	// partsDir holds <hex>, a part that a kept root names, by its sha256.
	partsDir = manifestsDir + "/parts"
)

// keptLimits parse again what was checked against the Apply's Limits when
// it was saved; they only keep a damaged file from costing much.
var keptLimits = manifest.Limits{MaxFiles: 1 << 24, MaxBytes: 1 << 62}

// manifestStore is the workspace's roots and parts: content-addressed,
// verified when saved and again when read, because the app shares the
// volume.
type manifestStore struct{ roots, parts string }

func newManifestStore(ws string) manifestStore {
	return manifestStore{roots: filepath.Join(ws, rootsDir), parts: filepath.Join(ws, partsDir)}
}

// part returns the part hex from the cache, nil if it is not there whole.
func (m manifestStore) part(hex string) []byte {
	return readVerified(filepath.Join(m.parts, hex), hex, int64(manifest.MaxPartBytes))
}

// root returns the saved root of release hex, nil if there is none whole.
func (m manifestStore) root(hex string) []byte {
	return readVerified(filepath.Join(m.roots, hex), hex, int64(manifest.MaxRootBytes(keptLimits)))
}

// readVerified reads file, at most limit bytes, if their sha256 is hex.
func readVerified(file, hex string, limit int64) []byte {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil || int64(len(b)) > limit || digest.HexOf(b) != hex {
		return nil
	}
	return b
}

// savePart and saveRoot keep b, whose sha256 the caller checked, under
// its hex: a temp file renamed into place, so that a reader never sees
// part of one.
func (m manifestStore) savePart(hex string, b []byte) error { return saveFile(m.parts, hex, b) }
func (m manifestStore) saveRoot(hex string, b []byte) error { return saveFile(m.roots, hex, b) }

func saveFile(dir, name string, b []byte) error {
	f, err := os.CreateTemp(dir, tempPrefix+name[:8]+"-")
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Chmod(fileMode)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), filepath.Join(dir, name))
	}
	if err != nil {
		os.Remove(f.Name())
	}
	return err
}

// prune removes the roots of releases that are neither under releases/
// nor in keep (being assembled), then the parts that no root left names.
// A root that cannot be read keeps nothing: its release gives no file and
// the next delta release downloads those files. Callers hold w.mu.
func (m manifestStore) prune(releases string, keep map[string]int) {
	roots, err := os.ReadDir(m.roots)
	if err != nil {
		return
	}
	named := map[string]bool{}
	for _, e := range roots {
		hex := e.Name()
		if !digest.IsHex(hex) {
			continue
		}
		if keep[hex] == 0 && !isDir(filepath.Join(releases, hex)) {
			_ = os.Remove(filepath.Join(m.roots, hex)) // tried again by the next prune
			continue
		}
		if r, err := manifest.ParseRoot(m.root(hex), keptLimits); err == nil {
			for _, p := range r.Parts {
				named[p.Hex] = true
			}
		}
	}
	parts, err := os.ReadDir(m.parts)
	if err != nil {
		return
	}
	for _, e := range parts {
		if digest.IsHex(e.Name()) && !named[e.Name()] {
			_ = os.Remove(filepath.Join(m.parts, e.Name()))
		}
	}
}

// entries returns the files of release hex as its saved manifest lists
// them, nil when it has none (an archive release) or it is damaged.
func (m manifestStore) entries(hex string) []manifest.Entry {
	r, err := manifest.ParseRoot(m.root(hex), keptLimits)
	if err != nil {
		return nil
	}
	var all []manifest.Entry
	for _, ref := range r.Parts {
		es, err := manifest.ParsePart(m.part(ref.Hex), ref, keptLimits)
		if err != nil {
			return nil
		}
		all = append(all, es...)
	}
	return all
}
