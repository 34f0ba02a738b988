// Package appimage builds container images from a directory holding a
// Dockerfile, the way `docker build` lays them out, by interpreting a small,
// strict subset of the Dockerfile language with go-containerregistry, and
// pushes them to a registry. The real single-node cluster of
// test/framework/cluster runs such images from its registry
// (test/framework/apps builds and pushes the apps of test/testdata/apps).
//
// The subset, one layer per COPY and RUN:
//
//	FROM <base> [AS <name>]    a base of Builder.Bases by the name written,
//	                           scratch, or an earlier stage
//	WORKDIR <path>
//	ENV <key>=<value> ...      (or the legacy ENV <key> <value>)
//	USER <user>[:<group>]
//	COPY [--chown=<u>:<g>] [--from=<stage>] <src>... <dst>
//	RUN npm ci [flags]         the machine's npm, in a temporary directory
//	                           holding what was copied into WORKDIR; its
//	                           changes (node_modules) are the layer, cached
//	                           on disk by package.json, package-lock.json
//	                           and the flags
//	RUN npm run <script>       the same for a package.json script (a build:
//	                           tsc), cached by everything in WORKDIR
//	ENTRYPOINT, CMD            JSON or shell form (["/bin/sh","-c",...])
//	EXPOSE <port>[/<proto>] ...
//
// COPY sources are relative to the directory and honour its .dockerignore;
// $NAME and ${NAME} expand from ENV in WORKDIR, ENV, USER, COPY and EXPOSE.
// Docker's config inheritance applies: the base's config is inherited, and
// an ENTRYPOINT resets the inherited CMD unless this stage sets CMD. Every
// other instruction, flag or form is an error naming the Dockerfile, the
// line and the instruction.
//
// Images are reproducible: files are written in path order with the time
// Epoch and modes normalized (0644, or 0755 when executable, directories
// 0755), so an unchanged directory makes the same digest.
//
// The cache (DefaultCacheDir, kept across clusters; delete it to start
// cold) holds npm-ci/<key>.tar (what each RUN npm ci added), npm/ (npm's
// own download cache), base/<digest>.json (the directories and users of a
// base image) and layers/<diff ID>.gz (CachedLayer).
package appimage

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"sync"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
)

// Scratch is the empty base, as in Docker.
const Scratch = "scratch"

// Builder builds images from Dockerfiles.
type Builder struct {
	// Bases are the images FROM may name, by the name written in the
	// Dockerfile (e.g. "node:20").
	Bases map[string]v1.Image
	// CacheDir holds the npm ci results and the indexes of base images;
	// empty: DefaultCacheDir().
	CacheDir string
	// Npm is the npm command RUN npm ci runs; empty: npm on $PATH.
	Npm string
	// Log receives one line per instruction and npm's output; nil: none.
	Log io.Writer
	// NpmRuns counts the npm ci runs (a cached result is not a run).
	NpmRuns int

	mu      sync.Mutex
	indexes map[v1.Hash]*baseIndex
}

// Build builds the image of dir/Dockerfile with bases, caching npm ci in
// DefaultCacheDir().
func Build(dir string, bases map[string]v1.Image) (v1.Image, error) {
	return (&Builder{Bases: bases}).Build(dir)
}

// DefaultCacheDir is $XDG_CACHE_HOME/aether-devhot/appimage, or
// $HOME/.cache/aether-devhot/appimage.
func DefaultCacheDir() string {
	dir, err := os.UserCacheDir()
	if err != nil {
		dir = os.TempDir()
	}
	return filepath.Join(dir, "aether-devhot", "appimage")
}

func (b *Builder) cacheDir() string {
	if b.CacheDir != "" {
		return b.CacheDir
	}
	return DefaultCacheDir()
}

func (b *Builder) logf(format string, a ...any) {
	if b.Log != nil {
		fmt.Fprintf(b.Log, format+"\n", a...)
	}
}

// stage is one FROM of a Dockerfile and what followed it.
type stage struct {
	name    string
	base    v1.Image
	img     v1.Image // base plus this stage's layers
	cfg     v1.Config
	history []v1.History
	cmdSet  bool
	// files are what this stage's layers added, by absolute path.
	files map[string]Entry
	// workdirs are the directories WORKDIR named.
	workdirs map[string]bool
}

// Build builds the image of dir/Dockerfile: the last stage's.
func (b *Builder) Build(dir string) (v1.Image, error) {
	file := filepath.Join(dir, "Dockerfile")
	ins, err := parseDockerfile(file)
	if err != nil {
		return nil, err
	}
	var ctx *buildContext
	var stages []*stage
	for _, in := range ins {
		if !supported[in.cmd] {
			return nil, in.errorf("instruction not supported (supported: FROM, WORKDIR, ENV, USER, COPY, RUN npm ci, RUN npm run, ENTRYPOINT, CMD, EXPOSE)")
		}
		if in.cmd != "FROM" && len(stages) == 0 {
			return nil, in.errorf("the first instruction must be FROM")
		}
		var st *stage
		if len(stages) > 0 {
			st = stages[len(stages)-1]
		}
		switch in.cmd {
		case "FROM":
			st, err = b.from(in, stages)
			if err == nil {
				stages = append(stages, st)
			}
		case "WORKDIR":
			err = st.workdir(in)
		case "ENV":
			err = st.env(in)
		case "USER":
			err = st.user(in)
		case "EXPOSE":
			err = st.expose(in)
		case "CMD", "ENTRYPOINT":
			err = st.command(in)
		case "COPY":
			if ctx == nil {
				if ctx, err = readContext(dir); err != nil {
					return nil, err
				}
			}
			err = b.copy(in, st, stages, ctx)
		case "RUN":
			err = b.run(in, st)
		}
		if err != nil {
			return nil, err
		}
	}
	return stages[len(stages)-1].finish()
}

// supported are the instructions Build interprets.
var supported = map[string]bool{"FROM": true, "WORKDIR": true, "ENV": true, "USER": true, "EXPOSE": true, "CMD": true, "ENTRYPOINT": true, "COPY": true, "RUN": true}

func (b *Builder) from(in instruction, stages []*stage) (*stage, error) {
	if _, err := in.flagValues(); err != nil {
		return nil, err
	}
	f := strings.Fields(in.args)
	st := &stage{files: map[string]Entry{}, workdirs: map[string]bool{}}
	switch {
	case len(f) == 1:
	case len(f) == 3 && strings.EqualFold(f[1], "AS"):
		st.name = strings.ToLower(f[2])
		for _, s := range stages {
			if s.name == st.name {
				return nil, in.errorf("stage name %q is used twice", f[2])
			}
		}
	default:
		return nil, in.errorf("want FROM <image> [AS <name>], got %q", in.args)
	}
	ref := f[0]
	switch {
	case ref == Scratch:
		st.base = empty.Image
	case stageByName(stages, ref) != nil:
		prev, err := stageByName(stages, ref).finish()
		if err != nil {
			return nil, in.errorf("stage %s: %v", ref, err)
		}
		st.base = prev
	case b.Bases[ref] != nil:
		st.base = b.Bases[ref]
	default:
		known := []string{Scratch}
		for k := range b.Bases {
			known = append(known, k)
		}
		sort.Strings(known)
		return nil, in.errorf("unknown base image %q (known: %s, or an earlier stage)", ref, strings.Join(known, ", "))
	}
	cf, err := st.base.ConfigFile()
	if err != nil {
		return nil, in.errorf("base %s: %v", ref, err)
	}
	st.img = st.base
	st.cfg = *cf.Config.DeepCopy()
	st.history = append([]v1.History(nil), cf.History...)
	return st, nil
}

func stageByName(stages []*stage, name string) *stage {
	for i, s := range stages {
		if (s.name != "" && s.name == strings.ToLower(name)) || strconv.Itoa(i) == name {
			return s
		}
	}
	return nil
}

// note records an instruction that adds no layer in the history.
func (st *stage) note(in instruction) {
	st.history = append(st.history, v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: in.raw, Comment: historyComment, EmptyLayer: true})
}

const historyComment = "aether-devhot appimage"

func (st *stage) workdir(in instruction) error {
	if _, err := in.flagValues(); err != nil {
		return err
	}
	p, err := expand(in.args, st.cfg.Env)
	if err != nil {
		return in.errorf("%v", err)
	}
	if p == "" {
		return in.errorf("needs a path")
	}
	st.cfg.WorkingDir = st.abs(p)
	st.workdirs[st.cfg.WorkingDir] = true
	st.note(in)
	return nil
}

// abs is p relative to the working directory.
func (st *stage) abs(p string) string {
	if path.IsAbs(p) {
		return path.Clean(p)
	}
	wd := st.cfg.WorkingDir
	if wd == "" {
		wd = "/"
	}
	return path.Join(wd, p)
}

func (st *stage) env(in instruction) error {
	if _, err := in.flagValues(); err != nil {
		return err
	}
	w, err := words(in.args)
	if err != nil {
		return in.errorf("%v", err)
	}
	if len(w) == 0 {
		return in.errorf("needs <key>=<value>")
	}
	var pairs [][2]string
	if !strings.Contains(w[0], "=") {
		// The legacy form: ENV key the rest of the line.
		key, rest, _ := strings.Cut(in.args, " ")
		pairs = append(pairs, [2]string{key, strings.TrimSpace(rest)})
	} else {
		for _, kv := range w {
			k, v, ok := strings.Cut(kv, "=")
			if !ok || k == "" {
				return in.errorf("%q is not <key>=<value>", kv)
			}
			pairs = append(pairs, [2]string{k, v})
		}
	}
	for _, p := range pairs {
		v, err := expand(p[1], st.cfg.Env)
		if err != nil {
			return in.errorf("%v", err)
		}
		st.setEnv(p[0], v)
	}
	st.note(in)
	return nil
}

func (st *stage) setEnv(k, v string) {
	for i, kv := range st.cfg.Env {
		if strings.HasPrefix(kv, k+"=") {
			st.cfg.Env[i] = k + "=" + v
			return
		}
	}
	st.cfg.Env = append(st.cfg.Env, k+"="+v)
}

func (st *stage) user(in instruction) error {
	if _, err := in.flagValues(); err != nil {
		return err
	}
	u, err := expand(in.args, st.cfg.Env)
	if err != nil {
		return in.errorf("%v", err)
	}
	if u == "" || strings.ContainsAny(u, " \t") {
		return in.errorf("want USER <user>[:<group>], got %q", in.args)
	}
	st.cfg.User = u
	st.note(in)
	return nil
}

func (st *stage) expose(in instruction) error {
	if _, err := in.flagValues(); err != nil {
		return err
	}
	s, err := expand(in.args, st.cfg.Env)
	if err != nil {
		return in.errorf("%v", err)
	}
	ports := strings.Fields(s)
	if len(ports) == 0 {
		return in.errorf("needs a port")
	}
	for _, p := range ports {
		num, proto, ok := strings.Cut(p, "/")
		if !ok {
			proto = "tcp"
		}
		n, err := strconv.Atoi(num)
		if err != nil || n < 1 || n > 65535 || (proto != "tcp" && proto != "udp" && proto != "sctp") {
			return in.errorf("%q is not <port>[/tcp|udp|sctp]", p)
		}
		if st.cfg.ExposedPorts == nil {
			st.cfg.ExposedPorts = map[string]struct{}{}
		}
		st.cfg.ExposedPorts[fmt.Sprintf("%d/%s", n, proto)] = struct{}{}
	}
	st.note(in)
	return nil
}

// command sets CMD or ENTRYPOINT. As in Docker, ENTRYPOINT resets the CMD
// inherited from the base unless this stage has set CMD.
func (st *stage) command(in instruction) error {
	if _, err := in.flagValues(); err != nil {
		return err
	}
	argv, err := command(in)
	if err != nil {
		return err
	}
	if in.cmd == "CMD" {
		st.cfg.Cmd, st.cmdSet = argv, true
	} else {
		st.cfg.Entrypoint = argv
		if !st.cmdSet {
			st.cfg.Cmd = nil
		}
	}
	st.note(in)
	return nil
}

// finish is the stage's image with its config, history and creation time.
func (st *stage) finish() (v1.Image, error) {
	cf, err := st.img.ConfigFile()
	if err != nil {
		return nil, err
	}
	cf = cf.DeepCopy()
	cf.Config = *st.cfg.DeepCopy()
	cf.History = append([]v1.History(nil), st.history...)
	cf.Created = v1.Time{Time: Epoch}
	if cf.OS == "" {
		cf.OS = "linux"
	}
	if cf.Architecture == "" {
		cf.Architecture = runtime.GOARCH
	}
	return mutate.ConfigFile(st.img, cf)
}

// addLayer appends a layer of entries to the stage, with their parent
// directories as the image has them (or root's 0755 for new ones).
func (b *Builder) addLayer(in instruction, st *stage, entries []Entry) error {
	have := map[string]bool{}
	for _, e := range entries {
		have[e.Path] = true
	}
	var idx *baseIndex
	for _, e := range entries {
		for d := path.Dir(e.Path); d != "/"; d = path.Dir(d) {
			if have[d] {
				continue
			}
			have[d] = true
			if own, ok := st.files[d]; ok && own.IsDir() {
				entries = append(entries, own)
				continue
			}
			if idx == nil {
				var err error
				if idx, err = b.index(st.base); err != nil {
					return in.errorf("base image: %v", err)
				}
			}
			if bd, ok := idx.Dirs[d]; ok {
				entries = append(entries, Dir(d, bd.Mode.Perm()|bd.Mode&(fs.ModeSticky|fs.ModeSetgid|fs.ModeSetuid), bd.UID, bd.GID))
			} else {
				entries = append(entries, Dir(d, 0o755, 0, 0))
			}
		}
	}
	l, err := Layer(entries)
	if err != nil {
		return in.errorf("%v", err)
	}
	img, err := mutate.AppendLayers(st.img, l)
	if err != nil {
		return in.errorf("%v", err)
	}
	st.img = img
	for _, e := range entries {
		st.files[e.Path] = e
	}
	st.history = append(st.history, v1.History{Created: v1.Time{Time: Epoch}, CreatedBy: in.raw, Comment: historyComment})
	return nil
}

// isDir reports whether p is a directory of the stage: one its layers
// added, a WORKDIR, or one of the base's.
func (b *Builder) isDir(st *stage, p string) bool {
	if p == "/" || st.workdirs[p] {
		return true
	}
	if e, ok := st.files[p]; ok {
		return e.IsDir()
	}
	idx, err := b.index(st.base)
	if err != nil {
		return false
	}
	_, ok := idx.Dirs[p]
	return ok
}

// copy runs COPY.
func (b *Builder) copy(in instruction, st *stage, stages []*stage, ctx *buildContext) error {
	flags, err := in.flagValues("chown", "from")
	if err != nil {
		return err
	}
	args, ok := jsonArgs(in.args)
	if !ok {
		if args, err = words(in.args); err != nil {
			return in.errorf("%v", err)
		}
	}
	for i := range args {
		if args[i], err = expand(args[i], st.cfg.Env); err != nil {
			return in.errorf("%v", err)
		}
	}
	if len(args) < 2 {
		return in.errorf("want COPY <src>... <dst>")
	}
	srcs, dstArg := args[:len(args)-1], args[len(args)-1]
	dst := st.abs(dstArg)
	uid, gid := -1, -1
	if c, ok := flags["chown"]; ok {
		if uid, gid, err = b.resolveUser(st, c); err != nil {
			return in.errorf("--chown=%s: %v", c, err)
		}
	}

	// sources: each a path and the entries under it (the path itself
	// first, relative to it).
	type source struct {
		name    string
		isDir   bool
		entries []Entry // paths relative to the source
	}
	var sources []source
	if from, ok := flags["from"]; ok {
		src := stageByName(stages[:len(stages)-1], from)
		if src == nil {
			return in.errorf("--from=%s: no earlier stage of that name", from)
		}
		for _, s := range srcs {
			p := path.Clean("/" + s)
			if strings.ContainsAny(s, "*?[") {
				return in.errorf("--from=%s: wildcards are not supported in %q", from, s)
			}
			es, isDir, err := b.stageTree(src, p)
			if err != nil {
				return in.errorf("--from=%s: %v", from, err)
			}
			if es == nil {
				return in.errorf("--from=%s: %s: not found", from, s)
			}
			sources = append(sources, source{name: p, isDir: isDir, entries: es})
		}
	} else {
		for _, s := range srcs {
			clean := path.Clean(s)
			if path.IsAbs(clean) {
				clean = strings.TrimPrefix(clean, "/")
				if clean == "" {
					clean = "."
				}
			}
			if clean == ".." || strings.HasPrefix(clean, "../") {
				return in.errorf("%s is outside the build context", s)
			}
			var matches []string
			if strings.ContainsAny(clean, "*?[") {
				for _, p := range ctx.paths {
					if ok, err := path.Match(clean, p); err != nil {
						return in.errorf("%q: %v", s, err)
					} else if ok {
						matches = append(matches, p)
					}
				}
				if len(matches) == 0 {
					return in.errorf("%s: no file of the build context matches (after .dockerignore)", s)
				}
			} else {
				if _, ok := ctx.entries[clean]; !ok && clean != "." {
					return in.errorf("%s: not found in the build context (or excluded by .dockerignore)", s)
				}
				matches = []string{clean}
			}
			for _, m := range matches {
				es, isDir := ctx.tree(m)
				sources = append(sources, source{name: m, isDir: isDir, entries: es})
			}
		}
	}
	// Docker's destination rules: into dst/ when it ends in a slash, is an
	// existing directory, or there are several sources (then the slash is
	// required).
	intoDir := strings.HasSuffix(dstArg, "/") || dstArg == "." || b.isDir(st, dst)
	if len(sources) > 1 && !intoDir {
		return in.errorf("with more than one source file, the destination must be a directory and end with a /")
	}
	var out []Entry
	add := func(e Entry) {
		if uid >= 0 {
			e.UID, e.GID = uid, gid
		}
		out = append(out, e)
	}
	for _, s := range sources {
		if s.isDir {
			for _, e := range s.entries {
				e.Path = path.Join(dst, e.Path)
				if e.Path == dst && (b.isDir(st, dst) && uid < 0) {
					continue
				}
				add(e)
			}
			continue
		}
		e := s.entries[0]
		e.Path = dst
		if intoDir {
			e.Path = path.Join(dst, path.Base(s.name))
		}
		add(e)
	}
	b.logf("%s:%d: %s (%d files)", filepath.Base(in.file), in.line, in.raw, len(out))
	return b.addLayer(in, st, out)
}

// stageTree is what stage st has at p: its entries relative to p (p
// itself first, as "."), and whether p is a directory. It looks at the
// stage's own layers, then at its base image.
func (b *Builder) stageTree(st *stage, p string) ([]Entry, bool, error) {
	pick := func(files map[string]Entry) ([]Entry, bool) {
		top, ok := files[p]
		if !ok {
			return nil, false
		}
		top.Path = "."
		out := []Entry{top}
		if !top.IsDir() {
			return out, false
		}
		var rest []Entry
		for fp, e := range files {
			if strings.HasPrefix(fp, p+"/") || (p == "/" && fp != "/") {
				rel, _ := filepath.Rel(p, fp)
				e.Path = filepath.ToSlash(rel)
				rest = append(rest, e)
			}
		}
		sort.Slice(rest, func(i, j int) bool { return rest[i].Path < rest[j].Path })
		return append(out, rest...), true
	}
	if es, isDir := pick(st.files); es != nil {
		return es, isDir, nil
	}
	all, err := flatten(st.base)
	if err != nil {
		return nil, false, err
	}
	es, isDir := pick(all)
	return es, isDir, nil
}

// flatten is an image's filesystem by absolute path (whiteouts applied).
func flatten(img v1.Image) (map[string]Entry, error) {
	rc := mutate.Extract(img)
	defer rc.Close()
	es, err := readTar(rc)
	if err != nil {
		return nil, err
	}
	out := map[string]Entry{"/": Dir("/", 0o755, 0, 0)}
	for _, e := range es {
		out[e.Path] = e
	}
	return out, nil
}

// resolveUser turns user[:group] into numeric IDs with the stage's
// /etc/passwd and /etc/group (its own layers first, then the base's).
func (b *Builder) resolveUser(st *stage, spec string) (uid, gid int, err error) {
	u, g, hasGroup := strings.Cut(spec, ":")
	passwd, group := st.files["/etc/passwd"].Data, st.files["/etc/group"].Data
	if passwd == nil || group == nil {
		idx, err := b.index(st.base)
		if err != nil {
			return 0, 0, err
		}
		if passwd == nil {
			passwd = idx.Passwd
		}
		if group == nil {
			group = idx.Group
		}
	}
	uid, gid, err = lookupID(passwd, u, true)
	if err != nil {
		return 0, 0, err
	}
	if hasGroup {
		if gid, _, err = lookupID(group, g, false); err != nil {
			return 0, 0, err
		}
	}
	return uid, gid, nil
}

// lookupID finds name (or a number) in passwd or group lines: the ID, and
// for a user the primary group (0 for a number with no entry).
func lookupID(db []byte, name string, user bool) (id, gid int, err error) {
	n, numErr := strconv.Atoi(name)
	for _, l := range strings.Split(string(db), "\n") {
		f := strings.Split(l, ":")
		if len(f) < 3 {
			continue
		}
		fid, err := strconv.Atoi(f[2])
		if err != nil || (f[0] != name && (numErr != nil || fid != n)) {
			continue
		}
		if user && len(f) >= 4 {
			g, _ := strconv.Atoi(f[3])
			return fid, g, nil
		}
		return fid, fid, nil
	}
	if numErr == nil && n >= 0 {
		return n, 0, nil
	}
	kind := "group"
	if user {
		kind = "user"
	}
	return 0, 0, fmt.Errorf("no %s %q in the image's /etc/%s", kind, name, map[bool]string{true: "passwd", false: "group"}[user])
}

// run runs RUN npm ci [flags] or RUN npm run <script>.
func (b *Builder) run(in instruction, st *stage) error {
	if _, err := in.flagValues(); err != nil {
		return err
	}
	argv, ok := jsonArgs(in.args)
	if !ok {
		argv = strings.Fields(in.args)
	}
	const supported = "only `RUN npm ci [flags]` and `RUN npm run <script>` are supported"
	if len(argv) < 2 || argv[0] != "npm" || (argv[1] != "ci" && argv[1] != "run") {
		return in.errorf("%s, got %q", supported, in.args)
	}
	if argv[1] == "run" && (len(argv) != 3 || !scriptName.MatchString(argv[2])) {
		return in.errorf("%s: %q is not one script name", supported, strings.Join(argv[2:], " "))
	}
	if argv[1] == "ci" {
		for _, f := range argv[2:] {
			if !strings.HasPrefix(f, "-") || strings.ContainsAny(f, "&|;<>$`") {
				return in.errorf("%s: %q is not a flag", supported, f)
			}
		}
	}
	wd := st.cfg.WorkingDir
	if wd == "" {
		wd = "/"
	}
	// What was copied into WORKDIR so far, relative to it.
	input := map[string]Entry{}
	for p, e := range st.files {
		if rel, ok := under(wd, p); ok {
			e.Path = rel
			input[rel] = e
		}
	}
	uid, gid := 0, 0
	if st.cfg.User != "" {
		var err error
		if uid, gid, err = b.resolveUser(st, st.cfg.User); err != nil {
			return in.errorf("USER %s: %v", st.cfg.User, err)
		}
	}
	key := npmKey(input, argv[1:])
	cache := filepath.Join(b.cacheDir(), "npm-"+argv[1], key+".tar")
	var changed []Entry
	if f, err := os.Open(cache); err == nil {
		changed, err = readTar(f)
		f.Close()
		if err != nil {
			return in.errorf("cached result %s: %v", cache, err)
		}
		b.logf("%s:%d: %s (cached: %s)", filepath.Base(in.file), in.line, in.raw, cache)
	} else {
		if changed, err = b.npm(in, input, argv[1:]); err != nil {
			return err
		}
		if err := writeCache(cache, changed); err != nil {
			return in.errorf("cache %s: %v", cache, err)
		}
	}
	entries := make([]Entry, 0, len(changed))
	for _, e := range changed {
		e.Path = path.Join(wd, e.Path)
		e.UID, e.GID = uid, gid
		entries = append(entries, e)
	}
	return b.addLayer(in, st, entries)
}

// under returns p relative to dir, if p is under it.
func under(dir, p string) (string, bool) {
	if dir == "/" {
		return strings.TrimPrefix(p, "/"), p != "/"
	}
	rel, ok := strings.CutPrefix(p, dir+"/")
	return rel, ok
}

// npmKey is the cache key of an npm command (args, after "npm") on input
// and the machine's node version (native modules depend on it): for npm
// ci the manifest and the lockfile, which are all it reads; for npm run
// every entry, since a build reads the sources.
func npmKey(input map[string]Entry, args []string) string {
	h := sha256.New()
	if args[0] == "ci" {
		fmt.Fprintf(h, "npm ci v1\nnode %s\nflags %q\n", nodeVersion(), args[1:])
		for _, n := range []string{"package.json", "package-lock.json"} {
			fmt.Fprintf(h, "%s %d\n", n, len(input[n].Data))
			h.Write(input[n].Data)
		}
		return hex.EncodeToString(h.Sum(nil))[:32]
	}
	fmt.Fprintf(h, "npm %q v1\nnode %s\n", args, nodeVersion())
	names := make([]string, 0, len(input))
	for n := range input {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		e := input[n]
		fmt.Fprintf(h, "%s %o %q %d\n", n, e.Mode, e.Link, len(e.Data))
		h.Write(e.Data)
	}
	return hex.EncodeToString(h.Sum(nil))[:32]
}

// scriptName is what RUN npm run takes: one package.json script's name.
var scriptName = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9:_.-]*$`)

var nodeVersionOnce = sync.OnceValue(func() string {
	out, err := exec.Command("node", "--version").Output()
	if err != nil {
		return "none"
	}
	return strings.TrimSpace(string(out))
})

func nodeVersion() string { return nodeVersionOnce() }

// npm writes input into a temporary directory, runs npm with args there,
// and returns what it added or changed, relative to that directory.
func (b *Builder) npm(in instruction, input map[string]Entry, args []string) ([]Entry, error) {
	tmp, err := os.MkdirTemp("", "appimage-npm-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	work := filepath.Join(tmp, "work")
	names := make([]string, 0, len(input))
	for n := range input {
		names = append(names, n)
	}
	sort.Strings(names)
	if err := os.MkdirAll(work, 0o755); err != nil {
		return nil, err
	}
	for _, n := range names {
		e, at := input[n], filepath.Join(work, filepath.FromSlash(n))
		if err := os.MkdirAll(filepath.Dir(at), 0o755); err != nil {
			return nil, err
		}
		switch {
		case e.IsDir():
			err = os.MkdirAll(at, e.Mode.Perm()|0o700)
		case e.IsSymlink():
			err = os.Symlink(e.Link, at)
		default:
			err = os.WriteFile(at, e.Data, e.Mode.Perm()|0o600)
		}
		if err != nil {
			return nil, err
		}
	}
	npm := b.Npm
	if npm == "" {
		npm = "npm"
	}
	cmd := exec.Command(npm, args...)
	cmd.Dir = work
	// npm's own download cache beside ours, so that a cold cache is cold;
	// no audit, funding or update check: none changes node_modules.
	cmd.Env = append(os.Environ(),
		"npm_config_cache="+filepath.Join(b.cacheDir(), "npm"),
		"npm_config_update_notifier=false", "npm_config_audit=false", "npm_config_fund=false")
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if b.Log != nil {
		cmd.Stdout = io.MultiWriter(&out, b.Log)
		cmd.Stderr = cmd.Stdout
	}
	b.logf("%s:%d: %s (running %s %s)", filepath.Base(in.file), in.line, in.raw, npm, strings.Join(args, " "))
	b.NpmRuns++
	if err := cmd.Run(); err != nil {
		return nil, in.errorf("npm %s: %v\n%s", strings.Join(args, " "), err, out.String())
	}
	var changed []Entry
	err = walkHost(work, func(rel string, info fs.FileInfo, data []byte, link string) {
		if rel == "." {
			return
		}
		e := normalize(Entry{Path: rel, Mode: info.Mode().Type() | info.Mode().Perm(), Data: data, Link: link})
		if old, ok := input[rel]; ok && old.Mode == e.Mode && bytes.Equal(old.Data, e.Data) && old.Link == e.Link {
			return
		}
		changed = append(changed, e)
	})
	return changed, err
}

// writeCache stores entries (relative paths) as a tar at file, atomically.
func writeCache(file string, entries []Entry) error {
	if err := os.MkdirAll(filepath.Dir(file), 0o755); err != nil {
		return err
	}
	tmp, err := os.CreateTemp(filepath.Dir(file), ".tmp-*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if err := writeTar(tmp, entries); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), file)
}

// normalize gives e the modes Docker's content would have on any checkout:
// directories 0755, files 0755 if executable else 0644, owned by root.
func normalize(e Entry) Entry {
	switch {
	case e.IsDir():
		e.Mode = fs.ModeDir | 0o755
	case e.IsSymlink():
		e.Mode = fs.ModeSymlink | 0o777
	case e.Mode&0o111 != 0:
		e.Mode = 0o755
	default:
		e.Mode = 0o644
	}
	e.UID, e.GID = 0, 0
	return e
}
