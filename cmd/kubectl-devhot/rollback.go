package main

import (
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"k8s.io/cli-runtime/pkg/genericclioptions"
	"k8s.io/cli-runtime/pkg/genericiooptions"

	"github.com/aether-dev/aether-devhot/pkg/annotations"
	"github.com/aether-dev/aether-devhot/pkg/bounds"
	"github.com/aether-dev/aether-devhot/pkg/digest"
)

func newRollbackCommand(flags *genericclioptions.ConfigFlags, streams genericiooptions.IOStreams) *cobra.Command {
	var to, url string
	timeout := 2 * time.Minute
	cmd := &cobra.Command{
		Use:   "rollback DEPLOYMENT",
		Short: "Go back to the previous release (or --to one of kubectl devhot history's), and wait until every pod runs it",
		Long: `Set the Deployment's digest to the release that went live before the one it
asks for now (or to --to), and wait as push does. The pods still keep their
last releases, so a rollback downloads nothing. The artifact URL is the
current one with the digest replaced, as the store's are; for an oci:// one,
the manifest that push tagged devhot-<digest> in the same repository; give
--artifact-url for another server.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, d, evs, err := targetEvents(cmd.Context(), flags, args[0])
			if err != nil {
				return err
			}
			name := d.Name
			current, currentURL := d.Annotations[annotations.Digest], d.Annotations[annotations.ArtifactURL]
			target, commit, err := rollbackTo(releases(evs), current, to)
			if err != nil {
				return fmt.Errorf("deployment %s: %w", name, err)
			}
			switch {
			case url != "":
			case strings.HasPrefix(currentURL, annotations.OCIScheme):
				if url, err = ociReleaseURL(cmd.Context(), currentURL, target); err != nil {
					return err
				}
			default:
				if url, err = swapDigest(currentURL, current, target); err != nil {
					return err
				}
			}
			fmt.Fprintf(streams.Out, "rolling deployment.apps/%s back from %s to %s\n", name, orDash(current), target)
			r, err := c.deliver(cmd.Context(), d, target, url, commit, time.Now(), timeout, streams.Out)
			if err != nil {
				return err
			}
			fmt.Fprintf(streams.Out, "deployment.apps/%s: %s live on %d/%d pods in %s\n", name, target, len(r.pods), r.count, ms(r.slowest()))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&to, "to", "", "the digest to go back to (default: the last one live before the desired one)")
	f.StringVar(&url, "artifact-url", "", "its artifact URL (default: the current URL with the digest replaced)")
	f.Var(bounds.DurationFlag{P: &timeout, Range: deliverTimeoutRange}, "timeout", "how long to wait for every pod to go live or fail on it ("+deliverTimeoutRange.String()+")")
	return cmd
}

// rollbackTo picks the release to go back to: to, if set and known, or
// else the newest that went live and is not current. It returns its
// commit, for the annotation.
func rollbackTo(rs []release, current, to string) (string, string, error) {
	if to != "" {
		if _, err := annotations.ParseDigest(to); err != nil {
			return "", "", fmt.Errorf("--to: %w", err)
		}
		for _, r := range rs {
			if r.digest == to {
				return to, r.commit, nil
			}
		}
		return "", "", fmt.Errorf("no pod has reported %s (kubectl devhot history lists what they have)", to)
	}
	for _, r := range rs {
		if r.digest != current && r.live() {
			return r.digest, r.commit, nil
		}
	}
	return "", "", fmt.Errorf("no release before %s went live: nothing to roll back to", orDash(current))
}

// swapDigest is url with the hex of digest from replaced by that of to:
// the store's URLs name their blob by its digest.
func swapDigest(url, from, to string) (string, error) {
	fromHex, toHex := strings.TrimPrefix(from, digest.Prefix), strings.TrimPrefix(to, digest.Prefix)
	if from == "" || !strings.Contains(url, fromHex) {
		return "", fmt.Errorf("the artifact URL %q does not name the digest %s, so the URL of %s is not known: pass --artifact-url", url, orDash(from), to)
	}
	return strings.Replace(url, fromHex, toHex, 1), nil
}
