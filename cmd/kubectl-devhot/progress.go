package main

import (
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/term"
)

// progressMin is the smallest upload that gets a progress bar: below a
// few MiB an upload is over before a bar would tell anything.
const progressMin = 4 << 20

// progressEvery is how often the bar is drawn again, at most.
const progressEvery = 100 * time.Millisecond

// uploadProgress returns what draws a bar for each upload on out of at
// least progressMin bytes, or nil where there should be none: out is not
// a terminal (a log, a pipe, a test).
func uploadProgress(out io.Writer) func(sent, total int64) {
	f, ok := out.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return nil
	}
	b := &progressBar{out: out, now: time.Now}
	return b.update
}

// progressBar draws one upload's progress in place, on one line.
type progressBar struct {
	out  io.Writer
	now  func() time.Time
	last time.Time
}

// update draws sent of total, unless it drew less than progressEvery ago
// or total is under progressMin; the last update, with everything sent, is
// always drawn and ends the line.
func (b *progressBar) update(sent, total int64) {
	now := b.now()
	if total < progressMin || sent < total && now.Sub(b.last) < progressEvery {
		return
	}
	b.last = now
	fmt.Fprintf(b.out, "\r%s", progressLine(sent, total, 30))
	if sent >= total {
		fmt.Fprintln(b.out)
	}
}

// progressLine is the bar for sent of total bytes, width characters wide
// between its brackets: "uploading [#######.......]  12.0/50.0 MiB  24%".
func progressLine(sent, total int64, width int) string {
	if total <= 0 {
		total = 1
	}
	sent = min(max(sent, 0), total)
	filled := int(int64(width) * sent / total)
	const mib = 1 << 20
	return fmt.Sprintf("uploading [%s%s] %5.1f/%.1f MiB %3d%%", strings.Repeat("#", filled), strings.Repeat(".", width-filled),
		float64(sent)/mib, float64(total)/mib, 100*sent/total)
}
