package main

import (
	"strings"
	"testing"

	"k8s.io/cli-runtime/pkg/genericiooptions"
)

// TestNumericFlagRanges: each numeric flag takes the ends of its range and
// refuses below, above, overflow and non-numbers at parse, naming the flag
// and the range. Before the ranges, history --limit=-1 panicked on a slice
// bound, logs --since=-5m was ignored and push --timeout=0s gave up at once.
func TestNumericFlagRanges(t *testing.T) {
	root := newRootCommand(genericiooptions.NewTestIOStreamsDiscard())
	for _, tc := range []struct {
		command   string
		flag      string
		ok, bad   []string
		wantRange string
	}{
		{"push", "timeout", []string{"1s", "1h", "90s"}, []string{"0s", "999ms", "-1m", "1h0m1s", "9999999999h", "120", ""}, "from 1s to 1h0m0s"},
		{"rollback", "timeout", []string{"1s", "1h"}, []string{"0s", "2h", "soon"}, "from 1s to 1h0m0s"},
		{"history", "limit", []string{"1", "1000"}, []string{"0", "-1", "1001", "9999999999999999999", "ten", ""}, "from 1 to 1000"},
		{"logs", "tail", []string{"-1", "0", "1000000"}, []string{"-2", "1000001", "9999999999999999999", "1e3", ""}, "from -1 to 1000000"},
		{"logs", "since", []string{"0s", "5m", "720h"}, []string{"-5m", "721h", "5", ""}, "from 0s to 720h0m0s"},
	} {
		cmd, _, err := root.Find([]string{tc.command})
		if err != nil || cmd.Name() != tc.command {
			t.Fatalf("no command %s: %v", tc.command, err)
		}
		for _, v := range tc.ok {
			if err := cmd.Flags().Set(tc.flag, v); err != nil {
				t.Errorf("%s --%s=%s: %v", tc.command, tc.flag, v, err)
			}
		}
		for _, v := range tc.bad {
			err := cmd.ParseFlags([]string{"--" + tc.flag + "=" + v})
			if err == nil || !strings.Contains(err.Error(), "--"+tc.flag) || !strings.Contains(err.Error(), tc.wantRange) {
				t.Errorf("%s --%s=%q: %v; want the flag and %q named", tc.command, tc.flag, v, err, tc.wantRange)
			}
		}
	}
}
