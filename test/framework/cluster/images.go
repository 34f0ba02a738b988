package cluster

import (
	"archive/tar"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
)

// The images the cluster runs. There is no registry: each is written as a
// docker-archive tarball and imported into containerd's k8s.io namespace,
// and pods never pull them (a non-latest tag, or imagePullPolicy Never).
const (
	// PauseImage is the sandbox image containerd's sandbox_image names.
	PauseImage = "docker.io/aether/pause:1"
	// NodeImage is node:20, made of the machine's node binary.
	NodeImage = "docker.io/library/node:20"
	// ProjectImage is the chart's image, as `make docker-build` would tag it.
	ProjectImage = "docker.io/library/aether-devhot:dev"
)

// imageFile is one file of an image's only layer.
type imageFile struct {
	path string // in the image, absolute
	mode int64
	uid  int
	data []byte
	dir  bool
}

// imageSpec is an image to write: its files and its runtime config.
type imageSpec struct {
	ref        string
	files      []imageFile
	entrypoint []string
	cmd        []string
	user       string
	env        []string
	workdir    string
}

// writeDockerArchive writes spec as a docker-archive tarball with one layer:
// manifest.json, the config named by its sha256, and <diffid>/layer.tar,
// which is what `ctr images import` reads.
func writeDockerArchive(out string, spec imageSpec) error {
	layer, err := layerTar(spec.files)
	if err != nil {
		return err
	}
	layerSum := sha256.Sum256(layer)
	diffID := hex.EncodeToString(layerSum[:])
	config, err := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config": map[string]any{
			"Entrypoint": spec.entrypoint,
			"Cmd":        spec.cmd,
			"User":       spec.user,
			"Env":        spec.env,
			"WorkingDir": spec.workdir,
		},
		"rootfs": map[string]any{"type": "layers", "diff_ids": []string{"sha256:" + diffID}},
	})
	if err != nil {
		return err
	}
	configSum := sha256.Sum256(config)
	configName := hex.EncodeToString(configSum[:]) + ".json"
	manifest, err := json.Marshal([]map[string]any{{
		"Config":   configName,
		"RepoTags": []string{spec.ref},
		"Layers":   []string{diffID + "/layer.tar"},
	}})
	if err != nil {
		return err
	}
	f, err := os.Create(out)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(f)
	for _, e := range []struct {
		name string
		data []byte
	}{{configName, config}, {diffID + "/layer.tar", layer}, {"manifest.json", manifest}} {
		if err := tw.WriteHeader(&tar.Header{Name: e.name, Mode: 0o644, Size: int64(len(e.data))}); err != nil {
			f.Close()
			return err
		}
		if _, err := tw.Write(e.data); err != nil {
			f.Close()
			return err
		}
	}
	if err := tw.Close(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// layerTar writes files, and every parent directory they need, as a tar.
func layerTar(files []imageFile) ([]byte, error) {
	entries := map[string]imageFile{}
	for _, f := range files {
		entries[f.path] = f
		for d := path.Dir(f.path); d != "/"; d = path.Dir(d) {
			if _, ok := entries[d]; !ok {
				entries[d] = imageFile{path: d, mode: 0o755, dir: true}
			}
		}
	}
	names := make([]string, 0, len(entries))
	for n := range entries {
		names = append(names, n)
	}
	sort.Strings(names)
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, n := range names {
		f := entries[n]
		h := &tar.Header{Name: strings.TrimPrefix(n, "/"), Mode: f.mode, Uid: f.uid, Gid: f.uid, Typeflag: tar.TypeReg, Size: int64(len(f.data))}
		if f.dir {
			h.Name += "/"
			h.Typeflag, h.Size = tar.TypeDir, 0
		}
		if err := tw.WriteHeader(h); err != nil {
			return nil, err
		}
		if _, err := tw.Write(f.data); err != nil {
			return nil, err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, err
	}
	return buf.Bytes(), nil
}

// hostFile reads a file of the machine into an image file at the same path.
func hostFile(p string, mode int64) (imageFile, error) {
	b, err := os.ReadFile(p)
	return imageFile{path: p, mode: mode, data: b}, err
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

// BuildImages writes the three images' tarballs into dir/images and
// returns their paths.
func (c *Cluster) BuildImages() ([]string, error) {
	dir := filepath.Join(c.Dir, "images")
	bin := filepath.Join(dir, "bin")
	if err := os.MkdirAll(bin, 0o755); err != nil {
		return nil, err
	}
	if err := c.goBinaries(bin, "./hack/pause", "./cmd/webhook", "./cmd/fetcher", "./cmd/store", "./cmd/kubectl-devhot"); err != nil {
		return nil, err
	}
	read := func(name, at string, uid int) (imageFile, error) {
		b, err := os.ReadFile(filepath.Join(bin, name))
		return imageFile{path: at, mode: 0o755, uid: uid, data: b}, err
	}

	pause, err := read("pause", "/pause", 0)
	if err != nil {
		return nil, err
	}
	project := []imageFile{
		{path: "/etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/sbin/nologin\nnonroot:x:65532:65532:nonroot:/home/nonroot:/sbin/nologin\n")},
		{path: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnonroot:x:65532:\n")},
		{path: "/home/nonroot", mode: 0o700, uid: 65532, dir: true},
		{path: "/tmp", mode: 0o1777, dir: true},
	}
	ca, err := hostFile("/etc/ssl/certs/ca-certificates.crt", 0o644)
	if err != nil {
		return nil, fmt.Errorf("the project image's CA bundle: %w", err)
	}
	project = append(project, ca)
	for _, b := range []string{"webhook", "fetcher", "store", "kubectl-devhot"} {
		f, err := read(b, "/"+b, 0)
		if err != nil {
			return nil, err
		}
		project = append(project, f)
	}
	node, err := nodeFiles()
	if err != nil {
		return nil, err
	}

	specs := []imageSpec{
		{ref: PauseImage, files: []imageFile{pause}, entrypoint: []string{"/pause"}},
		{ref: ProjectImage, files: project, entrypoint: []string{"/webhook"}, user: "65532:65532",
			env: []string{"PATH=/", "SSL_CERT_FILE=/etc/ssl/certs/ca-certificates.crt"}},
		{ref: NodeImage, files: node, cmd: []string{"node"}, workdir: "/",
			env: []string{"PATH=/usr/local/bin:/usr/bin:/bin", "NODE_VERSION=20"}},
	}
	var tars []string
	for _, s := range specs {
		out := filepath.Join(dir, strings.NewReplacer("/", "_", ":", "_").Replace(s.ref)+".tar")
		if err := writeDockerArchive(out, s); err != nil {
			return nil, fmt.Errorf("image %s: %w", s.ref, err)
		}
		tars = append(tars, out)
	}
	return tars, nil
}

var lddPath = regexp.MustCompile(`(/\S+) \(0x`)

// nodeFiles is the node:20 image's content: the machine's node binary at
// /usr/local/bin/node, as in the official image, and the libraries ldd
// lists, at the paths the loader looks for them.
func nodeFiles() ([]imageFile, error) {
	nodeBin, err := exec.LookPath("node")
	if err != nil {
		return nil, fmt.Errorf("node:20 is made of the machine's node: %w", err)
	}
	nodeBin, err = filepath.EvalSymlinks(nodeBin)
	if err != nil {
		return nil, err
	}
	out, err := exec.Command("ldd", nodeBin).Output()
	if err != nil {
		return nil, fmt.Errorf("ldd %s: %w", nodeBin, err)
	}
	node, err := hostFile(nodeBin, 0o755)
	if err != nil {
		return nil, err
	}
	node.path = "/usr/local/bin/node"
	files := []imageFile{node,
		{path: "/etc/passwd", mode: 0o644, data: []byte("root:x:0:0:root:/root:/bin/false\nnode:x:1000:1000::/home/node:/bin/false\n")},
		{path: "/etc/group", mode: 0o644, data: []byte("root:x:0:\nnode:x:1000:\n")},
		{path: "/home/node", mode: 0o755, uid: 1000, dir: true},
		{path: "/tmp", mode: 0o1777, dir: true},
	}
	for _, m := range lddPath.FindAllStringSubmatch(string(out), -1) {
		real, err := filepath.EvalSymlinks(m[1])
		if err != nil {
			return nil, err
		}
		b, err := os.ReadFile(real)
		if err != nil {
			return nil, err
		}
		files = append(files, imageFile{path: m[1], mode: 0o755, data: b})
	}
	return files, nil
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
