package main

import (
	"context"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fsnotify/fsnotify"
	eventsv1 "k8s.io/api/events/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/watch"

	"github.com/aether-dev/aether-devhot/pkg/pack"
	"github.com/aether-dev/aether-devhot/pkg/refresh"
)

// debounce collects the several writes of one save (an editor's temp
// file, rename and chmod) into one push.
const debounce = 100 * time.Millisecond

// watch pushes now and then after every change under the directory,
// until ctx ends (Ctrl-C), which is a clean exit. A failed push is
// reported and the watch goes on: the next save may fix it. Between
// pushes it prints what the fetchers report of the app going down.
func (p *pusher) watch(ctx context.Context) error {
	p.out = &syncWriter{w: p.out}
	rv, err := eventsSince(ctx, p.c, p.name)
	if err != nil {
		return err
	}
	var pushing atomic.Bool
	go p.follow(ctx, rv, &pushing)
	root, err := filepath.EvalSymlinks(p.dir)
	if err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	// Sources are the tree under its ignore rules; the build's output (the
	// project's out) under the rules of what is packed from it.
	srcOpts := pack.Options{IncludeNodeModules: p.o.includeNodeModules}
	ign, err := pack.LoadIgnore(root, srcOpts)
	if err != nil {
		return err
	}
	outIgn, err := pack.LoadIgnore(root, packOptions(p.proj, p.o.includeNodeModules))
	if err != nil {
		return err
	}
	if err := addTree(w, root, root, ign); err != nil {
		return err
	}
	var buildDone <-chan struct{}
	var buildErr *error
	if p.proj.WatchBuild != "" {
		for _, o := range p.proj.Out {
			if err := addOut(w, root, filepath.Join(root, filepath.FromSlash(o)), outIgn); err != nil {
				return err
			}
		}
		if buildDone, buildErr, err = startWatchBuild(ctx, root, p.proj.WatchBuild, p.out); err != nil {
			return err
		}
		fmt.Fprintf(p.out, "running %q; pushing %s when it changes\n", p.proj.WatchBuild, strings.Join(p.proj.Out, ", "))
	}
	fmt.Fprintf(p.out, "watching %s; Ctrl-C to stop\n", p.dir)
	if missing := p.missingOut(root); missing != "" {
		fmt.Fprintf(p.out, "%s is not there yet: the first push waits for the build\n", missing)
	} else {
		pushing.Store(true)
		p.pushOnce(ctx, time.Now())
		pushing.Store(false)
	}

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // the first change not pushed yet
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(p.out, "stopped")
			return nil
		case <-buildDone:
			return *buildErr
		case err := <-w.Errors:
			fmt.Fprintf(p.out, "watch: %v\n", err)
		case ev := <-w.Events:
			rel, err := filepath.Rel(root, ev.Name)
			if err != nil {
				continue
			}
			rel = filepath.ToSlash(rel)
			fi, statErr := os.Lstat(ev.Name)
			isDir := statErr == nil && fi.IsDir()
			if p.proj.Under(rel) {
				// The build's output: what a watch build makes is pushed;
				// what --build makes is the push's own doing.
				if p.proj.WatchBuild == "" || outIgn.Match(rel, isDir) {
					continue
				}
				if isDir && ev.Has(fsnotify.Create) {
					if err := addOut(w, root, ev.Name, outIgn); err != nil {
						fmt.Fprintf(p.out, "watch: %v\n", err)
					}
				}
				if first.IsZero() {
					first = time.Now()
				}
				timer.Reset(debounce)
				continue
			}
			if pack.IsIgnoreFile(rel) {
				if ign, err = pack.LoadIgnore(root, srcOpts); err != nil {
					fmt.Fprintf(p.out, "watch: %v\n", err)
					continue
				}
			} else if ign.Match(rel, isDir) {
				continue
			}
			if isDir && ev.Has(fsnotify.Create) {
				if err := addTree(w, root, ev.Name, ign); err != nil {
					fmt.Fprintf(p.out, "watch: %v\n", err)
				}
			}
			if first.IsZero() {
				first = time.Now()
			}
			if p.proj.WatchBuild == "" {
				// Under a watch build, a source change shows up as a
				// change of its output, which pushes; save → live runs
				// from the save all the same.
				timer.Reset(debounce)
			}
		case <-timer.C:
			pushing.Store(true)
			p.pushOnce(ctx, first)
			pushing.Store(false)
			first = time.Time{}
		}
	}
}

// missingOut names an out path that a watch build has not made yet, "" if
// there is none.
func (p *pusher) missingOut(root string) string {
	if p.proj.WatchBuild == "" {
		return ""
	}
	for _, o := range p.proj.Out {
		if _, err := os.Stat(filepath.Join(root, filepath.FromSlash(o))); err != nil {
			return o
		}
	}
	return ""
}

// addOut watches out, the build's output, if it exists yet, and every
// directory below it that is packed; if it does not, the watch on its
// parent sees it made.
func addOut(w *fsnotify.Watcher, root, out string, ign *pack.Ignore) error {
	if _, err := os.Stat(out); err != nil {
		return w.Add(filepath.Dir(out))
	}
	return addTree(w, root, out, ign)
}

// pushOnce pushes and prints the outcome, save → live included.
func (p *pusher) pushOnce(ctx context.Context, changed time.Time) {
	res, err := p.push(ctx, changed)
	switch {
	case ctx.Err() != nil:
	case err != nil:
		fmt.Fprintf(p.out, "push failed: %v\n", err)
	case !res.unchanged:
		fmt.Fprintf(p.out, "save → live: %s (%s)\n", ms(time.Since(changed)), res.digest)
	}
}

// follow watches the Deployment's refresh Events from rv until ctx ends and
// prints each report of the app going down (app_down) that arrives while
// no push is waiting; a push prints its own.
func (p *pusher) follow(ctx context.Context, rv string, pushing *atomic.Bool) {
	for ctx.Err() == nil {
		w, err := p.c.client.EventsV1().Events(p.c.namespace).Watch(ctx, metav1.ListOptions{FieldSelector: refresh.EventSelector(p.name), ResourceVersion: rv})
		if err != nil {
			// A gone resource version, or the API server away: start from now.
			if list, lerr := p.c.client.EventsV1().Events(p.c.namespace).List(ctx, metav1.ListOptions{FieldSelector: refresh.EventSelector(p.name), Limit: 1}); lerr == nil {
				rv = list.ResourceVersion
			}
			select {
			case <-ctx.Done():
			case <-time.After(time.Second):
			}
			continue
		}
		for ev := range w.ResultChan() {
			e, ok := ev.Object.(*eventsv1.Event)
			if !ok || (ev.Type != watch.Added && ev.Type != watch.Modified) {
				continue
			}
			rv = e.ResourceVersion
			if rec, pod, ok := refresh.FromEvent(e); ok && rec.Reason == refresh.ReasonAppDown && !pushing.Load() {
				fmt.Fprint(p.out, failureLines(pod, rec))
			}
		}
		w.Stop()
	}
}

// syncWriter serialises the writes of the push loop and of follow.
type syncWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (s *syncWriter) Write(b []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.w.Write(b)
}

// addTree watches dir and every directory below it that is not ignored;
// fsnotify watches one directory at a time.
func addTree(w *fsnotify.Watcher, root, dir string, ign *pack.Ignore) error {
	return filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		if path != root {
			rel, err := filepath.Rel(root, path)
			if err != nil {
				return err
			}
			if ign.Match(filepath.ToSlash(rel), true) {
				return filepath.SkipDir
			}
		}
		return w.Add(path)
	})
}
