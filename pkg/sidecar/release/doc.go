// Package release downloads, verifies, extracts and publishes the app's
// artifacts in the fetcher's workspace (DESIGN.md "Fetcher").
//
// A release becomes visible only after the sha256 of the downloaded bytes
// matches the digest asked for: it is extracted into a staging directory
// through os.Root, renamed to releases/<hex>, the relative symlink current is
// flipped with a rename, and .aether/boot.cjs is touched in place so that
// `node --watch` restarts the app exactly once (NODE-WATCH.md).
package release
