package manifest

import (
	"bytes"
	"testing"
)

// FuzzParse feeds hostile roots and parts to the parsers. Whatever they
// accept must be what Build writes for the same files: one release, one
// encoding, one digest.
func FuzzParse(f *testing.F) {
	root, parts, err := Build(tree(70))
	if err != nil {
		f.Fatal(err)
	}
	f.Add(root, parts[0].Data)
	f.Add([]byte(RootMagic+"files 1 bytes 1\npart "+hexOfString("p")+" 1\n"), []byte(PartMagic+hexOfString("a")+" 1 644 ../a\n"))
	f.Fuzz(func(t *testing.T, rootData, partData []byte) {
		r, err := ParseRoot(rootData, Limits{})
		if err != nil || len(r.Parts) != 1 {
			return
		}
		es, err := ParsePart(partData, r.Parts[0], Limits{})
		if err != nil {
			return
		}
		all, err := Join(r, [][]Entry{es}, Limits{})
		if err != nil {
			return
		}
		root, parts, err := Build(all)
		if err != nil {
			t.Fatalf("Build refuses what Join accepted: %v", err)
		}
		if len(parts) != 1 || !bytes.Equal(parts[0].Data, partData) {
			t.Fatalf("the part that Join accepted is not what Build writes")
		}
		if r.Parts[0].Hex == parts[0].Hex && !bytes.Equal(root, rootData) {
			t.Fatalf("the root that ParseRoot accepted is not what Build writes:\n%q\n%q", rootData, root)
		}
	})
}
