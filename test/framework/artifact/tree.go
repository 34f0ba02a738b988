package artifact

import (
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
)

// treeDirFiles is how many files WriteTree puts in one directory, about
// what a source tree holds.
const treeDirFiles = 50

// WriteTree writes files JavaScript modules of size bytes in all under
// dir, treeDirFiles to a directory (dir/m000/f00000.js, ...): a big
// source tree for delta pushes. Their content is text that gzip shrinks
// to about half, as it does source, and the same for the same arguments.
func WriteTree(dir string, files int, size int64) error {
	rng := rand.New(rand.NewPCG(uint64(files), uint64(size)))
	per := size / int64(files)
	raw := make([]byte, 16)
	for i := range files {
		var b strings.Builder
		for n := 0; int64(b.Len()) < per; n++ {
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
			fmt.Fprintf(&b, "export const v%d = %q;\n", n, hex.EncodeToString(raw))
		}
		p := filepath.Join(dir, fmt.Sprintf("m%03d", i/treeDirFiles), fmt.Sprintf("f%05d.js", i))
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return err
		}
		if err := os.WriteFile(p, []byte(b.String()[:per]), 0o644); err != nil {
			return err
		}
	}
	return nil
}
