package main

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/fsnotify/fsnotify"

	"github.com/aether-dev/aether-devhot/pkg/pack"
)

// debounce collects the several writes of one save (an editor's temp
// file, rename and chmod) into one push.
const debounce = 100 * time.Millisecond

// watch pushes now and then after every change under the directory,
// until ctx ends (Ctrl-C), which is a clean exit. A failed push is
// reported and the watch goes on: the next save may fix it.
func (p *pusher) watch(ctx context.Context) error {
	root, err := filepath.EvalSymlinks(p.dir)
	if err != nil {
		return err
	}
	w, err := fsnotify.NewWatcher()
	if err != nil {
		return err
	}
	defer w.Close()
	opts := pack.Options{IncludeNodeModules: p.o.includeNodeModules}
	ign, err := pack.LoadIgnore(root, opts)
	if err != nil {
		return err
	}
	if err := addTree(w, root, root, ign); err != nil {
		return err
	}
	fmt.Fprintf(p.out, "watching %s; Ctrl-C to stop\n", p.dir)
	p.pushOnce(ctx, time.Now())

	timer := time.NewTimer(time.Hour)
	timer.Stop()
	var first time.Time // the first change not pushed yet
	for {
		select {
		case <-ctx.Done():
			fmt.Fprintln(p.out, "stopped")
			return nil
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
			if rel == pack.IgnoreFile {
				if ign, err = pack.LoadIgnore(root, opts); err != nil {
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
			timer.Reset(debounce)
		case <-timer.C:
			p.pushOnce(ctx, first)
			first = time.Time{}
		}
	}
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
