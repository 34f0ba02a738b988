package cluster

import (
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"strings"
	"sync"

	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/aether-dev/aether-devhot/test/framework/appimage"
)

// The images the cluster runs, built with go-containerregistry from this
// machine's files. Three are written as docker-archive tarballs and
// imported into containerd's k8s.io namespace, and pods never pull them (a
// non-latest tag, or imagePullPolicy Never); the two Node.js bases are also
// pushed to the cluster's registry (RegistryAddr), where the app images of
// test/framework/apps are layered on them and pulled from by pods.
const (
	// PauseImage is the sandbox image containerd's sandbox_image names.
	PauseImage = "docker.io/aether/pause:1"
	// NodeImage is node:20, made of the machine's node and npm, laid out
	// as the official image is.
	NodeImage = "docker.io/library/node:20"
	// ProjectImage is the chart's image, as `make docker-build` would tag it.
	ProjectImage = "docker.io/library/aether-devhot:dev"
	// DistrolessImage is the distroless Node.js base as Dockerfiles name it:
	// node at /nodejs/bin/node, no shell, no npm.
	DistrolessImage = "gcr.io/distroless/nodejs20-debian12"

	// RegistryNodeImage is NodeImage in the cluster's registry.
	RegistryNodeImage = RegistryAddr + "/library/node:20"
	// RegistryDistrolessImage is DistrolessImage in the cluster's registry.
	RegistryDistrolessImage = RegistryAddr + "/distroless/nodejs20-debian12:latest"
)

// BaseImages maps the names a Dockerfile's FROM may use for the two bases
// to their references in the cluster's registry.
var BaseImages = map[string]string{
	"node:20":                   RegistryNodeImage,
	NodeImage:                   RegistryNodeImage,
	DistrolessImage:             RegistryDistrolessImage,
	DistrolessImage + ":latest": RegistryDistrolessImage,
}

// Paths of the machine's files in the images.
const (
	hostNpm    = "/usr/lib/node_modules/npm"
	passwdNode = "root:x:0:0:root:/root:/bin/bash\nnode:x:1000:1000::/home/node:/bin/bash\n"
	groupNode  = "root:x:0:\nnode:x:1000:\n"
	// pathEnv is the official images' PATH.
	pathEnv = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
)

// dockerEntrypoint behaves as the official node image's: prepend node when
// the first argument is a flag or not a command (or a non-executable file),
// then exec.
const dockerEntrypoint = `#!/bin/sh
set -e
# Run the command with node if the first argument is a flag, is not a command,
# or is a file that is not executable (node:20's docker-entrypoint.sh).
if [ "${1#-}" != "${1}" ] || [ -z "$(command -v "${1}")" ] || { [ -f "${1}" ] && ! [ -x "${1}" ]; }; then
  set -- node "$@"
fi
exec "$@"
`

// layerSpec is one layer of an image, and what made it (its history).
type layerSpec struct {
	createdBy string
	entries   []appimage.Entry
}

// newImage is an image of layers with config cfg, for linux/amd64, made
// at appimage.Epoch so that the same files make the same digest. Layers
// are compressed once and kept in the appimage cache (layers/, by diff ID).
func newImage(cfg v1.Config, layers ...layerSpec) (v1.Image, error) {
	img := v1.Image(empty.Image)
	var history []v1.History
	cache := filepath.Join(appimage.DefaultCacheDir(), "layers")
	for _, ls := range layers {
		l, err := appimage.CachedLayer(ls.entries, cache)
		if err != nil {
			return nil, err
		}
		if img, err = mutate.AppendLayers(img, l); err != nil {
			return nil, err
		}
		history = append(history, v1.History{Created: v1.Time{Time: appimage.Epoch}, CreatedBy: ls.createdBy, Comment: "aether-devhot cluster"})
	}
	cf, err := img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Architecture, cf.OS = "amd64", "linux"
	cf.Created = v1.Time{Time: appimage.Epoch}
	cf.Config = cfg
	cf.History = history
	return mutate.ConfigFile(img, cf)
}

// goBinaries builds the module's commands pkgs statically, as the
// Dockerfile does, into dir.
func (c *Cluster) goBinaries(dir string, pkgs ...string) error {
	args := append([]string{"build", "-trimpath", "-o", dir + "/"}, pkgs...)
	cmd := exec.Command("go", args...)
	cmd.Dir = c.Repo
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s: %v\n%s", strings.Join(pkgs, " "), err, out)
	}
	return nil
}

// BuildImages writes the tarballs of the three imported images (pause, the
// project's, node:20) into Dir/images and returns their paths; it also
// builds the two bases that PushBases pushes.
func (c *Cluster) BuildImages() ([]string, error) {
	dir := filepath.Join(c.Dir, "images")
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	var bases map[string]v1.Image
	var basesErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		bases, basesErr = buildBases()
	}()
	tars, err := c.buildImported(dir, bin)
	wg.Wait()
	if err != nil {
		return nil, err
	}
	if basesErr != nil {
		return nil, basesErr
	}
	c.bases = bases
	out := filepath.Join(dir, tarName(NodeImage))
	if err := writeImage(out, NodeImage, bases[NodeImage]); err != nil {
		return nil, err
	}
	return append(tars, out), nil
}

func tarName(ref string) string {
	return strings.NewReplacer("/", "_", ":", "_").Replace(ref) + ".tar"
}

// writeImage writes img as a docker-archive tarball tagged ref, which
// `ctr images import` reads.
func writeImage(out, ref string, img v1.Image) error {
	tag, err := name.NewTag(ref)
	if err != nil {
		return err
	}
	if err := tarball.WriteToFile(out, tag, img); err != nil {
		return fmt.Errorf("image %s: %w", ref, err)
	}
	return nil
}

// buildImported builds pause and the project's image from the module's
// commands and writes their tarballs.
func (c *Cluster) buildImported(dir, bin string) ([]string, error) {
	if err := c.goBinaries(bin, "./hack/pause", "./cmd/webhook", "./cmd/fetcher", "./cmd/store", "./cmd/kubectl-devhot"); err != nil {
		return nil, err
	}
	read := func(name, at string) (appimage.Entry, error) {
		return appimage.HostFile(filepath.Join(bin, name), at)
	}
	pause, err := read("pause", "/pause")
	if err != nil {
		return nil, err
	}
	base := []appimage.Entry{
		appimage.File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")),
		appimage.File("/etc/group", 0o644, []byte("root:x:0:\nnonroot:x:65532:\n")),
		appimage.Dir("/home/nonroot", 0o700, 65532, 65532),
		appimage.Dir("/tmp", 0o777|fs.ModeSticky, 0, 0),
	}
	ca, err := appimage.HostFile("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt")
	if err != nil {
		return nil, fmt.Errorf("the project image's CA bundle: %w", err)
	}
	base = append(base, ca)
	var binaries []appimage.Entry
	for _, b := range []string{"webhook", "fetcher", "store", "kubectl-devhot"} {
		f, err := read(b, "/"+b)
		if err != nil {
			return nil, err
		}
		binaries = append(binaries, f)
	}
	pauseImg, err := newImage(v1.Config{Entrypoint: []string{"/pause"}},
		layerSpec{"COPY pause /pause", []appimage.Entry{pause}})
	if err != nil {
		return nil, err
	}
	project, err := newImage(v1.Config{Entrypoint: []string{"/webhook"}, User: "65532:65532",
		Env: []string{"PATH=/", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}},
		layerSpec{"distroless-style static base", base},
		layerSpec{"COPY webhook fetcher store kubectl-devhot /", binaries})
	if err != nil {
		return nil, err
	}
	var tars []string
	for ref, img := range map[string]v1.Image{PauseImage: pauseImg, ProjectImage: project} {
		out := filepath.Join(dir, tarName(ref))
		if err := writeImage(out, ref, img); err != nil {
			return nil, err
		}
		tars = append(tars, out)
	}
	return tars, nil
}

// BuildBases builds node:20 and the distroless base from the machine's
// node (and npm, sh, env for node:20), keyed by the names of BaseImages;
// they are the images the cluster pushes, without a cluster.
func BuildBases() (map[string]v1.Image, error) {
	bases, err := buildBases()
	if err != nil {
		return nil, err
	}
	out := map[string]v1.Image{}
	for name, ref := range BaseImages {
		if ref == RegistryNodeImage {
			out[name] = bases[NodeImage]
		} else {
			out[name] = bases[DistrolessImage]
		}
	}
	return out, nil
}

// buildBases builds node:20 and the distroless base, keyed by NodeImage
// and DistrolessImage.
func buildBases() (map[string]v1.Image, error) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node:20 is made of the machine's node: %w", err)
	}
	if nodeBin, err = filepath.EvalSymlinks(nodeBin); err != nil {
		return nil, err
	}
	version, err := exec.Command(nodeBin, "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", nodeBin, err)
	}
	nodeVersion := strings.TrimPrefix(strings.TrimSpace(string(version)), "v")

	// node:20: a Debian-like root (merged /usr, sh, env, the libraries,
	// users root and node), node, npm, and the entrypoint, as separate
	// layers like the official image's.
	root, err := hostFiles("/bin/sh", "/usr/bin/env")
	if err != nil {
		return nil, err
	}
	libs, err := libraries(nodeBin, "/bin/sh", "/usr/bin/env")
	if err != nil {
		return nil, err
	}
	root = append(root, libs...)
	root = append(root, mergedUsr()...)
	root = append(root,
		appimage.File("/etc/passwd", 0o644, []byte(passwdNode)),
		appimage.File("/etc/group", 0o644, []byte(groupNode)),
		appimage.Dir("/root", 0o700, 0, 0),
		appimage.Dir("/home/node", 0o755, 1000, 1000),
		appimage.Dir("/tmp", 0o777|fs.ModeSticky, 0, 0),
		appimage.Dir("/usr/local/sbin", 0o755, 0, 0),
	)
	node, err := appimage.HostFile(nodeBin, "/usr/local/bin/node")
	if err != nil {
		return nil, err
	}
	npm, err := appimage.HostTree(hostNpm, "/usr/local/lib/node_modules/npm")
	if err != nil {
		return nil, fmt.Errorf("node:20's npm is the machine's %s: %w", hostNpm, err)
	}
	npm = append(npm,
		appimage.Symlink("/usr/local/bin/npm", "../lib/node_modules/npm/bin/npm-cli.js"),
		appimage.Symlink("/usr/local/bin/npx", "../lib/node_modules/npm/bin/npx-cli.js"))
	nodeImg, err := newImage(v1.Config{
		Entrypoint: []string{"docker-entrypoint.sh"},
		Cmd:        []string{"node"},
		Env:        []string{pathEnv, "NODE_VERSION=" + nodeVersion},
	},
		layerSpec{"debian:bookworm-slim: sh, env, the C and C++ runtime, users root and node", root},
		layerSpec{"node " + nodeVersion + " at /usr/local/bin/node", []appimage.Entry{node}},
		layerSpec{"npm at /usr/local/lib/node_modules/npm, /usr/local/bin/npm and npx", npm},
		layerSpec{"COPY docker-entrypoint.sh /usr/local/bin/", []appimage.Entry{appimage.File("/usr/local/bin/docker-entrypoint.sh", 0o755, []byte(dockerEntrypoint))}},
	)
	if err != nil {
		return nil, fmt.Errorf("node:20: %w", err)
	}

	// distroless: the libraries node needs, users root and nonroot, and
	// node at /nodejs/bin/node; no shell, no npm, no NODE_VERSION.
	dlibs, err := libraries(nodeBin)
	if err != nil {
		return nil, err
	}
	dbase := append(dlibs, mergedUsr()...)
	dbase = append(dbase,
		appimage.File("/etc/passwd", 0o644, []byte("root:x:0:0:root:/root:/sbin/nologin\nnobody:x:65534:65534:nobody:/nonexistent:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")),
		appimage.File("/etc/group", 0o644, []byte("root:x:0:\nnobody:x:65534:\nnonroot:x:65532:\n")),
		appimage.Dir("/root", 0o700, 0, 0),
		appimage.Dir("/home/nonroot", 0o700, 65532, 65532),
		appimage.Dir("/tmp", 0o777|fs.ModeSticky, 0, 0),
	)
	if ca, err := appimage.HostFile("/etc/ssl/certs/ca-certificates.crt", "/etc/ssl/certs/ca-certificates.crt"); err == nil {
		dbase = append(dbase, ca)
	}
	dnode, err := appimage.HostFile(nodeBin, "/nodejs/bin/node")
	if err != nil {
		return nil, err
	}
	distroless, err := newImage(v1.Config{
		Entrypoint: []string{"/nodejs/bin/node"},
		Env:        []string{pathEnv, "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"},
	},
		layerSpec{"distroless base-debian12: the C and C++ runtime, users root and nonroot", dbase},
		layerSpec{"node " + nodeVersion + " at /nodejs/bin/node", []appimage.Entry{dnode}},
	)
	if err != nil {
		return nil, fmt.Errorf("distroless: %w", err)
	}
	return map[string]v1.Image{NodeImage: nodeImg, DistrolessImage: distroless}, nil
}

// mergedUsr are Debian 12's top-level symlinks into /usr.
func mergedUsr() []appimage.Entry {
	return []appimage.Entry{
		appimage.Symlink("/bin", "usr/bin"), appimage.Symlink("/sbin", "usr/sbin"),
		appimage.Symlink("/lib", "usr/lib"), appimage.Symlink("/lib64", "usr/lib64"),
	}
}

var lddPath = regexp.MustCompile(`(/\S+) \(0x`)

// libraries are the shared libraries ldd lists for bins, with the
// machine's symlinks on the way to each.
func libraries(bins ...string) ([]appimage.Entry, error) {
	var paths []string
	for _, b := range bins {
		out, err := exec.Command("ldd", b).Output()
		if err != nil {
			return nil, fmt.Errorf("ldd %s: %w", b, err)
		}
		for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
			paths = append(paths, m[1])
		}
	}
	return hostFiles(paths...)
}

// hostFiles copies the machine's files at paths into entries at the same
// paths: every symlink on the way (a directory's, such as /lib -> usr/lib,
// or the file's own) becomes the same symlink, and the file lands at its
// real path. The top-level merged-/usr symlinks are left to mergedUsr.
func hostFiles(paths ...string) ([]appimage.Entry, error) {
	seen := map[string]bool{}
	var out []appimage.Entry
	for _, p := range paths {
		for hops := 0; ; hops++ {
			if hops > 16 {
				return nil, fmt.Errorf("%s: too many symlinks", p)
			}
			dir, err := filepath.EvalSymlinks(path.Dir(p))
			if err != nil {
				return nil, err
			}
			p = path.Join(dir, path.Base(p))
			if seen[p] {
				break
			}
			seen[p] = true
			st, err := os.Lstat(p)
			if err != nil {
				return nil, err
			}
			if st.Mode()&fs.ModeSymlink == 0 {
				f, err := appimage.HostFile(p, p)
				if err != nil {
					return nil, err
				}
				out = append(out, f)
				break
			}
			target, err := os.Readlink(p)
			if err != nil {
				return nil, err
			}
			out = append(out, appimage.Symlink(p, target))
			if !path.IsAbs(target) {
				target = path.Join(path.Dir(p), target)
			}
			p = target
		}
	}
	return out, nil
}

// ImportImages imports the tarballs into containerd's k8s.io namespace.
func (c *Cluster) ImportImages(tars []string) error {
	for _, t := range tars {
		if err := run("ctr", "-a", c.containerdSock(), "-n", "k8s.io", "images", "import", t); err != nil {
			return err
		}
	}
	return nil
}

// PushBases pushes node:20 and the distroless base to the cluster's
// registry, as RegistryNodeImage and RegistryDistrolessImage (building
// them unless BuildImages did).
func (c *Cluster) PushBases() error {
	bases := c.bases
	if bases == nil {
		var err error
		if bases, err = buildBases(); err != nil {
			return err
		}
	}
	errs := make(chan error, 2)
	for ref, img := range map[string]v1.Image{RegistryNodeImage: bases[NodeImage], RegistryDistrolessImage: bases[DistrolessImage]} {
		go func() { errs <- appimage.Push(img, ref) }()
	}
	for range 2 {
		if err := <-errs; err != nil {
			return err
		}
	}
	return nil
}
