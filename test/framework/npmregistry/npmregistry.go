// Package npmregistry is a minimal npm registry for tests whose pods, or
// processes, cannot reach registry.npmjs.org: it serves the packuments and
// tarballs of the packages it holds, which is what `npm ci` and
// `npm install` ask a registry for, and records what was asked.
//
// Packages come from lockfiles (FromLockfile fetches each `resolved`
// tarball from the npm registry once, checks its integrity, and caches it
// on disk) or are made by the test (Pack). npm rewrites lockfile URLs on
// registry.npmjs.org to its configured registry (replace-registry-host),
// so an app's committed lockfile installs from here unchanged once
// NPM_CONFIG_REGISTRY names URL.
package npmregistry

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha1"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"path"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"time"
)

// Package is one version of a package: its name, version and tarball.
type Package struct {
	Name, Version string
	Tarball       []byte
}

// Integrity is the package's Subresource Integrity string, as lockfiles
// carry it.
func (p Package) Integrity() string {
	sum := sha512.Sum512(p.Tarball)
	return "sha512-" + base64.StdEncoding.EncodeToString(sum[:])
}

// Resolved is the tarball's URL on registry.npmjs.org, as a lockfile
// written against it names it.
func (p Package) Resolved() string {
	return "https://registry.npmjs.org/" + p.Name + "/-/" + tarballName(p.Name, p.Version)
}

func tarballName(name, version string) string {
	return path.Base(name) + "-" + version + ".tgz"
}

// Pack makes a package from files (paths relative to the package root,
// package.json included) as `npm pack` lays it out, under package/.
func Pack(name, version string, files map[string]string) (Package, error) {
	var buf bytes.Buffer
	gz := gzip.NewWriter(&buf)
	tw := tar.NewWriter(gz)
	names := make([]string, 0, len(files))
	for n := range files {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		hdr := &tar.Header{Name: "package/" + n, Mode: 0o644, Size: int64(len(files[n])), ModTime: time.Unix(499162500, 0), Typeflag: tar.TypeReg}
		if err := tw.WriteHeader(hdr); err != nil {
			return Package{}, err
		}
		if _, err := io.WriteString(tw, files[n]); err != nil {
			return Package{}, err
		}
	}
	if err := tw.Close(); err != nil {
		return Package{}, err
	}
	if err := gz.Close(); err != nil {
		return Package{}, err
	}
	return Package{Name: name, Version: version, Tarball: buf.Bytes()}, nil
}

// lockfile is the part of a package-lock.json (v2, v3) that names
// tarballs.
type lockfile struct {
	Packages map[string]struct {
		Version   string `json:"version"`
		Resolved  string `json:"resolved"`
		Integrity string `json:"integrity"`
		Link      bool   `json:"link"`
	} `json:"packages"`
}

// FromLockfile returns every package that the package-lock.json at file
// installs, fetching each tarball from its resolved URL, or from the npm
// registry where the lockfile omits it (omit-lockfile-registry-resolved),
// unless cacheDir already holds it, and checking it against the
// lockfile's integrity.
func FromLockfile(file, cacheDir string) ([]Package, error) {
	b, err := os.ReadFile(file)
	if err != nil {
		return nil, err
	}
	var l lockfile
	if err := json.Unmarshal(b, &l); err != nil {
		return nil, fmt.Errorf("%s: %w", file, err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return nil, err
	}
	client := &http.Client{Timeout: 2 * time.Minute}
	var out []Package
	for key, p := range l.Packages {
		if key == "" || p.Link {
			continue
		}
		i := strings.LastIndex(key, "node_modules/")
		if i < 0 {
			return nil, fmt.Errorf("%s: package %q is not under node_modules", file, key)
		}
		pkg := Package{Name: key[i+len("node_modules/"):], Version: p.Version}
		url := p.Resolved
		if url == "" {
			url = pkg.Resolved()
		}
		if pkg.Tarball, err = fetch(client, url, p.Integrity, cacheDir); err != nil {
			return nil, fmt.Errorf("%s: %s: %w", file, key, err)
		}
		out = append(out, pkg)
	}
	return out, nil
}

// fetch gets url, or its copy in cacheDir named by its integrity.
func fetch(client *http.Client, url, integrity, cacheDir string) ([]byte, error) {
	algo, want, ok := strings.Cut(integrity, "-")
	if !ok || algo != "sha512" {
		return nil, fmt.Errorf("integrity %q is not sha512", integrity)
	}
	raw, err := base64.StdEncoding.DecodeString(want)
	if err != nil {
		return nil, fmt.Errorf("integrity %q: %w", integrity, err)
	}
	cached := filepath.Join(cacheDir, hex.EncodeToString(raw)+".tgz")
	if b, err := os.ReadFile(cached); err == nil {
		return b, nil
	}
	resp, err := client.Get(url)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("GET %s: %s", url, resp.Status)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return nil, err
	}
	if sum := sha512.Sum512(b); !bytes.Equal(sum[:], raw) {
		return nil, fmt.Errorf("GET %s: the tarball's sha512 is not the lockfile's integrity", url)
	}
	tmp := cached + ".tmp"
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return nil, err
	}
	return b, os.Rename(tmp, cached)
}

// DefaultCacheDir is where FromLockfile and Fetch keep tarballs by
// default: $XDG_CACHE_HOME/aether-devhot/npm-registry, or
// $HOME/.cache/aether-devhot/npm-registry.
func DefaultCacheDir() (string, error) {
	dir, err := os.UserCacheDir()
	if err != nil {
		return "", err
	}
	return filepath.Join(dir, "aether-devhot", "npm-registry"), nil
}

// Fetch gets one version of a package from registry.npmjs.org, checked
// against the integrity its registry entry gives, through cacheDir.
func Fetch(name, version, cacheDir string) (Package, error) {
	client := &http.Client{Timeout: 2 * time.Minute}
	resp, err := client.Get("https://registry.npmjs.org/" + name + "/" + version)
	if err != nil {
		return Package{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return Package{}, fmt.Errorf("GET %s@%s from the npm registry: %s", name, version, resp.Status)
	}
	var doc struct {
		Dist struct {
			Tarball   string `json:"tarball"`
			Integrity string `json:"integrity"`
		} `json:"dist"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 16<<20)).Decode(&doc); err != nil {
		return Package{}, fmt.Errorf("%s@%s: %w", name, version, err)
	}
	if err := os.MkdirAll(cacheDir, 0o755); err != nil {
		return Package{}, err
	}
	tgz, err := fetch(client, doc.Dist.Tarball, doc.Dist.Integrity, cacheDir)
	return Package{Name: name, Version: version, Tarball: tgz}, err
}

// AddDependencies returns packageJSON and lockfile (a package-lock.json,
// v2 or v3) with each of packages added as a direct dependency, at its
// exact version, as `npm install <name>@<version>` would write them for a
// package with no dependencies of its own.
func AddDependencies(packageJSON, lock []byte, packages ...Package) (newPackageJSON, newLock []byte, err error) {
	var pj, lf map[string]any
	if err := json.Unmarshal(packageJSON, &pj); err != nil {
		return nil, nil, fmt.Errorf("package.json: %w", err)
	}
	if err := json.Unmarshal(lock, &lf); err != nil {
		return nil, nil, fmt.Errorf("package-lock.json: %w", err)
	}
	pkgs, _ := lf["packages"].(map[string]any)
	root, _ := pkgs[""].(map[string]any)
	if root == nil {
		return nil, nil, fmt.Errorf("package-lock.json has no packages[\"\"]: not lockfileVersion 2 or 3")
	}
	for _, obj := range []map[string]any{pj, root} {
		deps, _ := obj["dependencies"].(map[string]any)
		if deps == nil {
			deps = map[string]any{}
			obj["dependencies"] = deps
		}
		for _, p := range packages {
			deps[p.Name] = p.Version
		}
	}
	for _, p := range packages {
		pkgs["node_modules/"+p.Name] = map[string]any{"version": p.Version, "resolved": p.Resolved(), "integrity": p.Integrity()}
	}
	if newPackageJSON, err = json.MarshalIndent(pj, "", "  "); err != nil {
		return nil, nil, err
	}
	newLock, err = json.MarshalIndent(lf, "", "  ")
	return append(newPackageJSON, '\n'), append(newLock, '\n'), err
}

// Registry serves packages over plain HTTP.
type Registry struct {
	// URL is the registry's base, with a trailing slash, as
	// NPM_CONFIG_REGISTRY takes it.
	URL string

	srv *http.Server
	ln  net.Listener

	mu       sync.Mutex
	packages map[string]map[string]Package // name -> version -> package
	requests []string
}

// Start serves packages on addr ("127.0.0.1:0", or an address the pods
// reach) until Close.
func Start(addr string, packages ...Package) (*Registry, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	r := &Registry{URL: "http://" + ln.Addr().String() + "/", ln: ln, packages: map[string]map[string]Package{}}
	r.Add(packages...)
	r.srv = &http.Server{Handler: r, ReadHeaderTimeout: 10 * time.Second}
	go r.srv.Serve(ln)
	return r, nil
}

// Add makes packages available.
func (r *Registry) Add(packages ...Package) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, p := range packages {
		if r.packages[p.Name] == nil {
			r.packages[p.Name] = map[string]Package{}
		}
		r.packages[p.Name][p.Version] = p
	}
}

// Close stops the registry: later requests are refused.
func (r *Registry) Close() error { return r.srv.Close() }

// Requests returns the paths asked for so far, in order.
func (r *Registry) Requests() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Clone(r.requests)
}

// Tarballs returns the tarball paths asked for so far: what was installed.
func (r *Registry) Tarballs() []string {
	var out []string
	for _, p := range r.Requests() {
		if strings.HasSuffix(p, ".tgz") {
			out = append(out, p)
		}
	}
	return out
}

// ServeHTTP answers GET /<name> with the packument and
// GET /<name>/-/<file>.tgz with the tarball; scoped names come as
// @scope/name or @scope%2fname.
func (r *Registry) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	p := strings.TrimPrefix(req.URL.Path, "/")
	r.mu.Lock()
	r.requests = append(r.requests, "/"+p)
	r.mu.Unlock()
	if req.Method != http.MethodGet && req.Method != http.MethodHead {
		http.Error(w, `{"error":"method not allowed"}`, http.StatusMethodNotAllowed)
		return
	}
	if name, file, ok := strings.Cut(p, "/-/"); ok {
		r.serveTarball(w, name, file)
		return
	}
	r.servePackument(w, strings.ReplaceAll(p, "%2f", "/"))
}

func (r *Registry) serveTarball(w http.ResponseWriter, name, file string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for v, pkg := range r.packages[name] {
		if tarballName(name, v) == file {
			w.Header().Set("Content-Type", "application/octet-stream")
			w.Write(pkg.Tarball)
			return
		}
	}
	notFound(w)
}

func (r *Registry) servePackument(w http.ResponseWriter, name string) {
	r.mu.Lock()
	versions := r.packages[name]
	type dist struct {
		Tarball   string `json:"tarball"`
		Integrity string `json:"integrity"`
		Shasum    string `json:"shasum"`
	}
	type version struct {
		Name    string `json:"name"`
		Version string `json:"version"`
		Dist    dist   `json:"dist"`
	}
	doc := struct {
		Name     string             `json:"name"`
		DistTags map[string]string  `json:"dist-tags"`
		Versions map[string]version `json:"versions"`
	}{Name: name, DistTags: map[string]string{}, Versions: map[string]version{}}
	// latest is the greatest version string: tests hold one version of a
	// package, or name the version they want.
	var latest string
	for v, pkg := range versions {
		sha := sha1.Sum(pkg.Tarball)
		doc.Versions[v] = version{Name: name, Version: v, Dist: dist{Tarball: r.URL + name + "/-/" + tarballName(name, v), Integrity: pkg.Integrity(), Shasum: hex.EncodeToString(sha[:])}}
		if v > latest {
			latest = v
		}
	}
	r.mu.Unlock()
	if latest == "" {
		notFound(w)
		return
	}
	doc.DistTags["latest"] = latest
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(doc)
}

func notFound(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusNotFound)
	io.WriteString(w, `{"error":"not_found"}`)
}
