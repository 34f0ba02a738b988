package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestProgressLine(t *testing.T) {
	const mib = 1 << 20
	for _, tc := range []struct {
		sent, total int64
		want        string
	}{
		{0, 50 * mib, "uploading [..........]   0.0/50.0 MiB   0%"},
		{12 * mib, 50 * mib, "uploading [##........]  12.0/50.0 MiB  24%"},
		{50 * mib, 50 * mib, "uploading [##########]  50.0/50.0 MiB 100%"},
		{60 * mib, 50 * mib, "uploading [##########]  50.0/50.0 MiB 100%"}, // a retry's bytes never overflow
		{-1, 0, "uploading [..........]   0.0/0.0 MiB   0%"},
	} {
		if got := progressLine(tc.sent, tc.total, 10); got != tc.want {
			t.Errorf("progressLine(%d, %d) = %q, want %q", tc.sent, tc.total, got, tc.want)
		}
	}
}

// TestProgressBarThrottles: updates closer than progressEvery are not
// drawn, except the last, which ends the line; nor is an upload under
// progressMin.
func TestProgressBarThrottles(t *testing.T) {
	var out bytes.Buffer
	clock := time.Unix(0, 0)
	b := &progressBar{out: &out, now: func() time.Time { return clock }}
	for sent := int64(1); sent <= 10; sent++ {
		b.update(sent*progressMin, 10*progressMin)
		clock = clock.Add(progressEvery / 4)
	}
	small := &progressBar{out: &out, now: time.Now}
	small.update(progressMin-1, progressMin-1)
	// Drawn at 1 (the first), 5 and 9 (each progressEvery later), and 10.
	if n := strings.Count(out.String(), "\r"); n != 4 {
		t.Errorf("drawn %d times, want 4:\n%q", n, out.String())
	}
	if !strings.HasSuffix(out.String(), "100%\n") {
		t.Errorf("the bar does not end at 100%% with a newline: %q", out.String())
	}
}

// TestNoProgressOffATerminal: no bar when out is a file or a buffer (a
// log, a pipe, CI).
func TestNoProgressOffATerminal(t *testing.T) {
	f, err := os.CreateTemp(t.TempDir(), "out")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	for name, got := range map[string]func(int64, int64){
		"buffer": uploadProgress(&bytes.Buffer{}),
		"file":   uploadProgress(f),
	} {
		if got != nil {
			t.Errorf("%s: a progress bar", name)
		}
	}
}
