package main

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/spf13/pflag"

	"github.com/aether-dev/aether-devhot/pkg/pack"
	"github.com/aether-dev/aether-devhot/pkg/project"
)

// buildFlags are push's flags twinned with devhot.yaml's fields; a flag
// that was set wins over the file.
type buildFlags struct {
	build, watchBuild string
	out               []string
}

func (b *buildFlags) add(f *pflag.FlagSet) {
	f.StringVar(&b.build, "build", "", "shell command run in DIR before packing, e.g. 'npm run build'; a failure pushes nothing (devhot.yaml: build)")
	f.StringSliceVar(&b.out, "out", nil, "pack these paths of DIR (the build's output, e.g. dist) and package.json instead of the whole tree (devhot.yaml: out)")
	f.StringVar(&b.watchBuild, "watch-build", "", "with --watch: a long-running build run instead of --build, e.g. 'npx tsc --watch'; changes under --out are pushed (devhot.yaml: watchBuild)")
}

// projectConfig reads dir's devhot.yaml and lays the flags that were set
// over it.
func projectConfig(dir string, b buildFlags, flags *pflag.FlagSet) (project.Config, error) {
	c, err := project.Load(dir)
	if err != nil {
		return c, err
	}
	if flags.Changed("build") {
		c.Build = b.build
	}
	if flags.Changed("out") {
		c.Out = b.out
	}
	if flags.Changed("watch-build") {
		c.WatchBuild = b.watchBuild
	}
	if err := c.Validate(); err != nil {
		return c, fmt.Errorf("--out/--watch-build: %w", err)
	}
	return c, nil
}

// packOptions are pack's options for the project.
func packOptions(c project.Config, includeNodeModules bool) pack.Options {
	return pack.Options{IncludeNodeModules: includeNodeModules, Only: c.Out}
}

// maxBuildOutput is how many lines of a failed build push prints.
const maxBuildOutput = 40

// runBuild runs the project's build in dir; a failure returns an error
// carrying the last lines of its output, as the compiler wrote them.
func runBuild(ctx context.Context, dir, command string) error {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	out, err := cmd.CombinedOutput()
	if err == nil {
		return nil
	}
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	if len(lines) > maxBuildOutput {
		lines = append([]string{fmt.Sprintf("… (%d lines before)", len(lines)-maxBuildOutput)}, lines[len(lines)-maxBuildOutput:]...)
	}
	return fmt.Errorf("build %q failed (%v), nothing pushed:\n  %s", command, err, strings.Join(lines, "\n  "))
}

// startWatchBuild starts the project's long-running build in dir and
// prints its output, each line prefixed, until ctx ends; done is closed
// when it exits, with the error in *exit.
func startWatchBuild(ctx context.Context, dir, command string, out io.Writer) (done <-chan struct{}, exit *error, err error) {
	cmd := exec.CommandContext(ctx, "sh", "-c", command)
	cmd.Dir = dir
	pr, pw := io.Pipe()
	cmd.Stdout, cmd.Stderr = pw, pw
	if err := cmd.Start(); err != nil {
		return nil, nil, fmt.Errorf("watch build %q: %w", command, err)
	}
	ch := make(chan struct{})
	var result error
	go func() {
		sc := bufio.NewScanner(pr)
		for sc.Scan() {
			if line := strings.TrimRight(sc.Text(), " \t\r"); line != "" {
				fmt.Fprintf(out, "build: %s\n", line)
			}
		}
	}()
	go func() {
		result = cmd.Wait()
		pw.Close()
		if ctx.Err() == nil {
			result = fmt.Errorf("watch build %q ended: %v", command, result)
		} else {
			result = nil
		}
		close(ch)
	}()
	return ch, &result, nil
}
