package manifest

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
	"testing"
)

func hexOfString(s string) string {
	sum := sha256.Sum256([]byte(s))
	return hex.EncodeToString(sum[:])
}

// tree returns n sorted entries under a few directories.
func tree(n int) []Entry {
	var out []Entry
	for i := range n {
		p := fmt.Sprintf("src/d%02d/f%05d.js", i%50, i)
		out = append(out, Entry{Path: p, Mode: ModeFile, Size: int64(i), Hex: hexOfString(p)})
	}
	sortEntries(out)
	return out
}

func sortEntries(es []Entry) {
	for i := 1; i < len(es); i++ {
		for j := i; j > 0 && es[j].Path < es[j-1].Path; j-- {
			es[j], es[j-1] = es[j-1], es[j]
		}
	}
}

// parse is what the fetcher does: the root, each part, Join.
func parse(t *testing.T, root []byte, parts map[string][]byte) ([]Entry, error) {
	t.Helper()
	r, err := ParseRoot(root, Limits{})
	if err != nil {
		return nil, err
	}
	var ps [][]Entry
	for _, ref := range r.Parts {
		b, ok := parts[ref.Hex]
		if !ok {
			t.Fatalf("root names part %s that Build did not make", ref.Hex)
		}
		if hexOfString(string(b)) != ref.Hex {
			t.Fatalf("part %s: bytes have another sha256", ref.Hex)
		}
		es, err := ParsePart(b, ref, Limits{})
		if err != nil {
			return nil, err
		}
		ps = append(ps, es)
	}
	return Join(r, ps, Limits{})
}

func TestBuildRoundTrip(t *testing.T) {
	for _, n := range []int{0, 1, 63, 5000} {
		t.Run(fmt.Sprint(n), func(t *testing.T) {
			es := tree(n)
			root, parts, err := Build(es)
			if err != nil {
				t.Fatal(err)
			}
			byHex := map[string][]byte{}
			for _, p := range parts {
				byHex[p.Hex] = p.Data
			}
			got, err := parse(t, root, byHex)
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(es) {
				t.Fatalf("%d entries back, want %d", len(got), len(es))
			}
			for i := range es {
				if got[i] != es[i] {
					t.Fatalf("entry %d = %+v, want %+v", i, got[i], es[i])
				}
			}
			again, _, _ := Build(es)
			if string(again) != string(root) {
				t.Fatal("Build gave two encodings of one tree")
			}
		})
	}
}

// TestOneChangeMovesOnePart is what makes a save cheap: changing one file's
// content changes exactly one part, and adding one changes at most two.
func TestOneChangeMovesOnePart(t *testing.T) {
	es := tree(5000)
	root, parts, err := Build(es)
	if err != nil {
		t.Fatal(err)
	}
	old := map[string]bool{}
	for _, p := range parts {
		old[p.Hex] = true
	}
	if len(parts) < 40 || len(parts) > 160 {
		t.Errorf("%d parts for 5000 files, want about 80", len(parts))
	}
	if len(root) > 16<<10 {
		t.Errorf("root of 5000 files is %d bytes, want under 16 KiB", len(root))
	}
	changed := append([]Entry(nil), es...)
	changed[1234].Hex = hexOfString("new content")
	added := append(append([]Entry(nil), es...), Entry{Path: "src/d07/new.js", Mode: ModeFile, Hex: hexOfString("x")})
	sortEntries(added)
	for name, tc := range map[string]struct {
		es   []Entry
		want int
	}{"changed": {changed, 1}, "added": {added, 2}} {
		_, ps, err := Build(tc.es)
		if err != nil {
			t.Fatal(err)
		}
		n, bytes := 0, 0
		for _, p := range ps {
			if !old[p.Hex] {
				n++
				bytes += len(p.Data)
			}
		}
		if n < 1 || n > tc.want {
			t.Errorf("%s: %d new parts, want 1 to %d", name, n, tc.want)
		}
		if bytes > 48<<10 {
			t.Errorf("%s: the new parts are %d bytes", name, bytes)
		}
	}
}

func TestParseRefuses(t *testing.T) {
	h := hexOfString("a")
	part := func(lines ...string) string { return PartMagic + strings.Join(lines, "\n") + "\n" }
	root := func(files, bytes int, parts ...string) string {
		s := RootMagic + fmt.Sprintf("files %d bytes %d\n", files, bytes)
		for _, p := range parts {
			s += "part " + hexOfString(p) + " 1\n"
		}
		return s
	}
	for _, tc := range []struct {
		name string
		root string
		part string // the one part, if the root names one
		want error
	}{
		{"not a root", "{}", "", ErrMalformed},
		{"no newline at the end", strings.TrimSuffix(root(0, 0), "\n"), "", ErrMalformed},
		{"huge file count", RootMagic + "files 99999999999 bytes 0\n", "", ErrTooLarge},
		{"huge byte count", RootMagic + "files 0 bytes 9000000000000\n", "", ErrTooLarge},
		{"counts that do not add up", RootMagic + "files 2 bytes 0\npart " + h + " 1\n", "", ErrMalformed},
		{"leading zero", RootMagic + "files 00 bytes 0\n", "", ErrMalformed},
		{"negative", RootMagic + "files -1 bytes 0\n", "", ErrMalformed},
		{"climbs out", "", part(h + " 1 644 ../../etc/passwd"), ErrUnsafePath},
		{"absolute", "", part(h + " 1 644 /etc/passwd"), ErrUnsafePath},
		{"dot element", "", part(h + " 1 644 a/./b"), ErrUnsafePath},
		{"empty element", "", part(h + " 1 644 a//b"), ErrUnsafePath},
		{"backslash", "", part(h + ` 1 644 a\..\b`), ErrUnsafePath},
		{"control character", "", part(h + " 1 644 a\rb"), ErrUnsafePath},
		{"setuid mode", "", part(h + " 1 4755 a"), ErrMalformed},
		{"upper-case hash", "", part(strings.ToUpper(h) + " 1 644 a"), ErrMalformed},
		{"size that is not canonical", "", part(h + " +1 644 a"), ErrMalformed},
		{"size over the release", "", part(h + " 2 644 a"), ErrMalformed},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := tc.root
			parts := map[string][]byte{}
			if tc.part != "" {
				r = root(1, 1, tc.part)
				parts[hexOfString(tc.part)] = []byte(tc.part)
			}
			_, err := parse(t, []byte(r), parts)
			if !errors.Is(err, tc.want) {
				t.Fatalf("err = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestJoinRefuses(t *testing.T) {
	e := func(p string) Entry { return Entry{Path: p, Mode: ModeFile, Hex: hexOfString(p)} }
	for _, tc := range []struct {
		name string
		es   []Entry
	}{
		{"a file and a directory of the same name", []Entry{e("a"), e("a/b")}},
		{"out of order", []Entry{e("b"), e("a")}},
		{"repeated", []Entry{e("a"), e("a")}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if err := Check(tc.es, Limits{}); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Check = %v, want ErrMalformed", err)
			}
			// The same, handed over as one hostile part.
			data := encodePart(tc.es)
			ref := PartRef{Hex: hexOfString(string(data)), Files: len(tc.es)}
			root := &Root{Files: len(tc.es), Parts: []PartRef{ref}}
			es, err := ParsePart(data, ref, Limits{})
			if err == nil {
				_, err = Join(root, [][]Entry{es}, Limits{})
			}
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("ParsePart+Join = %v, want ErrMalformed", err)
			}
		})
	}
}

// TestJoinRefusesOtherCuts: parts cut elsewhere than Build cuts would give
// the same files a second digest.
func TestJoinRefusesOtherCuts(t *testing.T) {
	es := tree(300)
	root, parts, err := Build(es)
	if err != nil {
		t.Fatal(err)
	}
	r, err := ParseRoot(root, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	// Move the first entry of part 1 to the end of part 0.
	p0 := append(append([]Entry(nil), parts[0].Entries...), parts[1].Entries[0])
	p1 := parts[1].Entries[1:]
	r.Parts[0].Files++
	r.Parts[1].Files--
	ps := [][]Entry{p0, p1}
	for _, p := range parts[2:] {
		ps = append(ps, p.Entries)
	}
	if _, err := Join(r, ps, Limits{}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("Join = %v, want ErrMalformed", err)
	}
}
