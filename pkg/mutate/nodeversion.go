package mutate

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/aether-dev/aether-devhot/pkg/imageconfig"
)

// nodeVersion is what an image tells of its Node.js version.
type nodeVersion struct {
	major, minor int
	// minorKnown is false for "16" or "node:18-alpine".
	minorKnown bool
	// latest: a tag with only a major names that line's newest release
	// when the image is pulled; an ENV with only a major says nothing
	// more.
	latest bool
	// text and from say where the version was read, for the denial.
	text, from string
}

var (
	versionText = regexp.MustCompile(`^v?(\d+)(?:\.(\d+))?`)
	// distroless names its Node.js images nodejs<major>-<distro>.
	distrolessNode = regexp.MustCompile(`/nodejs(\d+)(?:-|$)`)
)

// codenames are the LTS lines' tags of the official node image.
var codenames = map[string]int{
	"argon": 4, "boron": 6, "carbon": 8, "dubnium": 10, "erbium": 12, "fermium": 14,
	"gallium": 16, "hydrogen": 18, "iron": 20, "jod": 22, "krypton": 24,
}

// imageNodeVersion reads the Node.js version from the image config's
// NODE_VERSION (the official images set it), else from the tag of an
// official node image or the name of a distroless one. ok is false when
// nothing tells.
func imageNodeVersion(image string, cfg *imageconfig.Config) (nodeVersion, bool) {
	if cfg != nil {
		if v := cfg.Getenv("NODE_VERSION"); v != "" {
			nv, ok := parseNodeVersion(v)
			nv.text, nv.from = v, "the image's NODE_VERSION"
			return nv, ok
		}
	}
	ref, _, _ := strings.Cut(image, "@")
	repo, tag := ref, "latest"
	if i := strings.LastIndex(ref, ":"); i > strings.LastIndex(ref, "/") {
		repo, tag = ref[:i], ref[i+1:]
	}
	if m := distrolessNode.FindStringSubmatch(repo); m != nil && strings.Contains(repo, "distroless") {
		major, _ := strconv.Atoi(m[1])
		return nodeVersion{major: major, latest: true, text: repo, from: "the image's name"}, true
	}
	if repo != "node" && !strings.HasSuffix(repo, "/library/node") && repo != "library/node" {
		return nodeVersion{}, false
	}
	line, _, _ := strings.Cut(tag, "-")
	if major, ok := codenames[line]; ok {
		return nodeVersion{major: major, latest: true, text: tag, from: "the image's tag"}, true
	}
	nv, ok := parseNodeVersion(tag)
	nv.latest, nv.text, nv.from = !nv.minorKnown, tag, "the image's tag"
	return nv, ok
}

func parseNodeVersion(v string) (nodeVersion, bool) {
	m := versionText.FindStringSubmatch(v)
	if m == nil {
		return nodeVersion{}, false
	}
	nv := nodeVersion{}
	nv.major, _ = strconv.Atoi(m[1])
	if m[2] != "" {
		nv.minor, _ = strconv.Atoi(m[2])
		nv.minorKnown = true
	}
	return nv, true
}

// hasWatch reports whether node of this version has --watch (18.11 and
// later, and the backport to 16.19), and whether that is known.
func (v nodeVersion) hasWatch() (has, known bool) {
	switch {
	case v.major >= 19:
		return true, true
	case v.major == 18 || v.major == 16:
		need := 11
		if v.major == 16 {
			need = 19
		}
		if v.minorKnown {
			return v.minor >= need, true
		}
		return v.latest, v.latest // 16 and 18's newest releases have it
	}
	return false, true
}

// checkNodeVersion denies an app container whose image tells a Node.js
// version without --watch: the rewritten command would crash on start
// with "bad option: --watch".
func checkNodeVersion(i int, image string, cfg *imageconfig.Config) *Denial {
	v, ok := imageNodeVersion(image, cfg)
	if !ok {
		return nil
	}
	has, known := v.hasWatch()
	if has {
		return nil
	}
	problem := fmt.Sprintf("runs Node.js %s (%s), which has no --watch: it came in Node.js 18.11 and 16.19", v.text, v.from)
	if !known {
		problem = fmt.Sprintf("runs Node.js %s (%s), which does not tell whether it is 16.19 or 18.11 or later, the first with --watch", v.text, v.from)
	}
	return deny(ReasonNodeVersion, containerField(i, "image"), problem,
		"build the image on Node.js 18.11 or later (e.g. node:20), then label it again")
}
