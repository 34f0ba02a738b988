package main

import (
	"context"
	"os/exec"
	"strings"
)

// commitOf returns the commit of dir's git checkout, with "-dirty" when
// anything under dir differs from it, or "" when dir is not in a git
// repository or git is not installed.
func commitOf(ctx context.Context, dir string) string {
	out, err := exec.CommandContext(ctx, "git", "-C", dir, "rev-parse", "HEAD").Output()
	if err != nil {
		return ""
	}
	sha := strings.TrimSpace(string(out))
	status, err := exec.CommandContext(ctx, "git", "-C", dir, "status", "--porcelain", "--", ".").Output()
	if err != nil || len(strings.TrimSpace(string(status))) > 0 {
		sha += "-dirty"
	}
	return sha
}
