package project

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	tests := []struct {
		name    string
		file    string // "" means no devhot.yaml
		want    Config
		wantErr string
	}{
		{name: "no file"},
		{name: "a TypeScript project", file: "build: npm run build\nout: [dist]\nwatchBuild: npx tsc --watch --preserveWatchOutput\n",
			want: Config{Build: "npm run build", Out: []string{"dist"}, WatchBuild: "npx tsc --watch --preserveWatchOutput"}},
		{name: "two outs", file: "out:\n- dist\n- public/assets\n", want: Config{Out: []string{"dist", "public/assets"}}},
		{name: "unknown field", file: "build: make\nouts: [dist]\n", wantErr: `devhot.yaml: error unmarshaling JSON: while decoding JSON: json: unknown field "outs"`},
		{name: "out outside", file: "out: [../shared]\n", wantErr: `out[0] "../shared": must be a path inside the project`},
		{name: "out absolute", file: "out: [/dist]\n", wantErr: `out[0] "/dist": must be a path inside the project`},
		{name: "out the project", file: "out: [.]\n", wantErr: `out[0] ".": must be a path inside the project`},
		{name: "out not clean", file: "out: [dist/]\n", wantErr: `out[0] "dist/": write it as "dist"`},
		{name: "outs overlap", file: "out: [dist, dist/server]\n", wantErr: `out[1] "dist/server" overlaps out[0] "dist"`},
		{name: "watchBuild without out", file: "watchBuild: tsc -w\n", wantErr: "watchBuild needs out"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dir := t.TempDir()
			if tt.file != "" {
				if err := os.WriteFile(filepath.Join(dir, File), []byte(tt.file), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			got, err := Load(dir)
			if (err == nil) != (tt.wantErr == "") || err != nil && !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want %q", err, tt.wantErr)
			}
			if err == nil && !reflect.DeepEqual(got, tt.want) {
				t.Errorf("Load() = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestUnder(t *testing.T) {
	c := Config{Out: []string{"dist", "public/assets"}}
	for rel, want := range map[string]bool{"dist": true, "dist/server.js": true, "distx": false, "public": false, "public/assets/a.css": true, "src/a.ts": false} {
		if got := c.Under(rel); got != want {
			t.Errorf("Under(%q) = %v, want %v", rel, got, want)
		}
	}
}
