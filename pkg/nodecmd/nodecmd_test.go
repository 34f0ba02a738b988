package nodecmd

import (
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

const boot = "/workspace/.aether/boot.cjs"

func TestParseAndRewrite(t *testing.T) {
	for _, c := range []struct {
		name    string
		argv    []string
		scripts map[string]string
		want    []string // the rewrite
		script  string   // Invocation.Script
		err     string   // substring of the error; "not node" for a NotNodeError
	}{
		{name: "node script", argv: []string{"node", "server.js"},
			want: []string{"node", "--watch", boot}, script: "server.js"},
		{name: "flags and args kept", argv: []string{"node", "--max-old-space-size=512", "-r", "dotenv/config", "src/index.js", "--port", "80"},
			want: []string{"node", "--max-old-space-size=512", "-r", "dotenv/config", "--watch", boot, "--port", "80"}, script: "src/index.js"},
		{name: "binary path kept, watch once", argv: []string{"/usr/local/bin/node", "--watch", "app.js"},
			want: []string{"/usr/local/bin/node", "--watch", boot}, script: "app.js"},
		{name: "watch-path dropped", argv: []string{"node", "--watch-path", "src", "--watch-preserve-output", "app.js"},
			want: []string{"node", "--watch", boot}, script: "app.js"},
		{name: "double dash", argv: []string{"node", "--", "app.js", "-x"},
			want: []string{"node", "--watch", boot, "-x"}, script: "app.js"},
		{name: "distroless", argv: []string{"/nodejs/bin/node", "--require=./tracing.js", "index.js"},
			want: []string{"/nodejs/bin/node", "--require=./tracing.js", "--watch", boot}, script: "index.js"},
		{name: "docker-entrypoint.sh node", argv: []string{"docker-entrypoint.sh", "node", "src/server.js"},
			want: []string{"docker-entrypoint.sh", "node", "--watch", boot}, script: "src/server.js"},
		{name: "docker-entrypoint.sh implicit node", argv: []string{"docker-entrypoint.sh", "server.js", "8080"},
			want: []string{"docker-entrypoint.sh", "--watch", boot, "8080"}, script: "server.js"},
		{name: "docker-entrypoint.sh implicit node with flag", argv: []string{"docker-entrypoint.sh", "--require=./t.js", "index.js"},
			want: []string{"docker-entrypoint.sh", "--require=./t.js", "--watch", boot}, script: "index.js"},
		{name: "docker-entrypoint.sh REPL", argv: []string{"docker-entrypoint.sh", "node"}, err: "REPL"},
		{name: "tini", argv: []string{"/sbin/tini", "-s", "--", "node", "app.js"},
			want: []string{"/sbin/tini", "-s", "--", "node", "--watch", boot}, script: "app.js"},
		{name: "dumb-init", argv: []string{"dumb-init", "--single-child", "node", "app.js"},
			want: []string{"dumb-init", "--single-child", "node", "--watch", boot}, script: "app.js"},
		{name: "env wrapper", argv: []string{"env", "NODE_ENV=production", "node", "app.js"},
			want: []string{"env", "NODE_ENV=production", "node", "--watch", boot}, script: "app.js"},
		{name: "gosu", argv: []string{"gosu", "node", "node", "app.js"},
			want: []string{"gosu", "node", "node", "--watch", boot}, script: "app.js"},
		{name: "shell: steps before node kept", argv: []string{"sh", "-c", "npx prisma migrate deploy && node dist/main.js"},
			want: []string{"sh", "-c", "npx prisma migrate deploy && node --watch " + boot}, script: "dist/main.js"},
		{name: "shell: exec and expanded args kept", argv: []string{"/bin/sh", "-c", `exec node server.js --port "$PORT"`},
			want: []string{"/bin/sh", "-c", `exec node --watch ` + boot + ` --port "$PORT"`}, script: "server.js"},
		{name: "shell: flags, assignments, watch-path", argv: []string{"bash", "-ec", "cd /app; NODE_ENV=production node --watch-path=. --inspect app.js\n"},
			want: []string{"bash", "-ec", "cd /app; NODE_ENV=production node --inspect --watch " + boot + "\n"}, script: "app.js"},
		{name: "shell: positional args after the line", argv: []string{"sh", "-c", `node app.js "$@"`, "sh", "--port", "80"},
			want: []string{"sh", "-c", `node --watch ` + boot + ` "$@"`, "sh", "--port", "80"}, script: "app.js"},
		{name: "shell: quoted script", argv: []string{"sh", "-c", `node 'my app.js'`},
			want: []string{"sh", "-c", `node --watch ` + boot}, script: "my app.js"},
		{name: "shell: pipe", argv: []string{"sh", "-c", "node server.js | tee /log"}, err: `uses "|"`},
		{name: "shell: redirect", argv: []string{"sh", "-c", "node server.js 2>&1"}, err: `uses ">&"`},
		{name: "shell: background", argv: []string{"sh", "-c", "node a.js & node b.js"}, script: "b.js",
			want: []string{"sh", "-c", "node a.js & node --watch " + boot}},
		{name: "shell: expanded script", argv: []string{"sh", "-c", "node $ENTRY"}, err: "only known once the shell expands it"},
		{name: "shell: expanded program", argv: []string{"sh", "-c", "$NODE app.js"}, err: "which only the shell can expand"},
		{name: "shell: compound", argv: []string{"sh", "-c", "if true; then node a.js; fi"}, err: "compound command"},
		{name: "shell: unclosed quote", argv: []string{"sh", "-c", "node 'a.js"}, err: "not closed"},
		{name: "shell: not node", argv: []string{"sh", "-c", "python app.py"}, err: "not node"},
		{name: "shell script file", argv: []string{"sh", "/app/start.sh"}, err: "runs a script file"},
		{name: "python", argv: []string{"python", "app.py"}, err: "not node"},
		{name: "nginx", argv: []string{"nginx", "-g", "daemon off;"}, err: "not node"},
		{name: "empty", argv: nil, err: "not node"},
		{name: "inline code", argv: []string{"node", "-e", "require('x')"}, err: "evaluates inline code"},
		{name: "REPL", argv: []string{"node"}, err: "REPL"},
		{name: "stdin", argv: []string{"node", "-"}, err: "standard input"},

		{name: "npm start", argv: []string{"npm", "start"}, scripts: map[string]string{"start": "node src/server.js"},
			want: []string{"node", "--watch", boot}, script: "src/server.js"},
		{name: "npm run with args", argv: []string{"npm", "--silent", "run", "serve", "--", "--port", "3000"},
			scripts: map[string]string{"serve": "node --enable-source-maps dist/index.js --host 0.0.0.0"},
			want:    []string{"node", "--enable-source-maps", "--watch", boot, "--host", "0.0.0.0", "--port", "3000"}, script: "dist/index.js"},
		{name: "npm start: assignment runs in sh", argv: []string{"npm", "start"}, scripts: map[string]string{"start": "NODE_ENV=production node src/index.js"},
			want: []string{Shell, "-c", `NODE_ENV=production exec node --watch ` + boot + ` "$@"`, "sh"}, script: "src/index.js"},
		{name: "npm start: expansion runs in sh", argv: []string{"npm", "start", "--", "-v"}, scripts: map[string]string{"start": "node app.js --port $PORT"},
			want: []string{Shell, "-c", `exec node --watch ` + boot + ` --port $PORT "$@"`, "sh", "-v"}, script: "app.js"},
		{name: "npm start: cross-env", argv: []string{"npm", "start"}, scripts: map[string]string{"start": "cross-env NODE_ENV=production node app.js"},
			want: []string{Shell, "-c", `NODE_ENV=production exec node --watch ` + boot + ` "$@"`, "sh"}, script: "app.js"},
		{name: "npm start: default", argv: []string{"npm", "start"}, scripts: map[string]string{"build": "tsc"},
			want: []string{"node", "--watch", boot}, script: "server.js"},
		{name: "npm start: script runs a script", argv: []string{"npm", "start"}, scripts: map[string]string{"start": "npm run serve -- -p 1", "serve": "node app.js"},
			want: []string{"node", "--watch", boot, "-p", "1"}, script: "app.js"},
		{name: "npm start: two commands", argv: []string{"npm", "start"}, scripts: map[string]string{"start": "npm run build && node dist/index.js"},
			err: `the "start" script "npm run build && node dist/index.js" is more than one command`},
		{name: "npm start: not node", argv: []string{"npm", "start"}, scripts: map[string]string{"start": "next start"},
			err: `the "start" script "next start" runs next, not node`},
		{name: "npm start: nodemon", argv: []string{"npm", "start"}, scripts: map[string]string{"start": "nodemon server.js"},
			err: "runs nodemon"},
		{name: "npm install", argv: []string{"npm", "install"}, err: "npm install does not run a package script"},
		{name: "npm unknown flag", argv: []string{"npm", "start", "--prefix", "x"}, err: "npm --prefix is a flag"},
		{name: "yarn script", argv: []string{"yarn", "serve", "--port", "3000"}, scripts: map[string]string{"serve": "node server.js"},
			want: []string{"node", "--watch", boot, "--port", "3000"}, script: "server.js"},
		{name: "yarn flag", argv: []string{"yarn", "--cwd", "x", "start"}, err: "yarn --cwd is a flag"},
		{name: "yarn no script", argv: []string{"yarn", "start"}, scripts: map[string]string{}, err: `package.json has no "start" script`},
		{name: "pnpm start default", argv: []string{"pnpm", "start"},
			want: []string{"node", "--watch", boot}, script: "server.js"},
		{name: "pnpm install", argv: []string{"pnpm", "install"}, err: "pnpm install does not run a package script"},
		{name: "node --run", argv: []string{"node", "--run", "start"}, scripts: map[string]string{"start": "node x.js"},
			want: []string{"node", "--watch", boot}, script: "x.js"},
		{name: "docker-entrypoint.sh npm start", argv: []string{"docker-entrypoint.sh", "npm", "start"}, scripts: map[string]string{"start": "node a.js"},
			want: []string{"docker-entrypoint.sh", "node", "--watch", boot}, script: "a.js"},
		{name: "shell: npm start", argv: []string{"sh", "-c", "npm run migrate && npm start"}, scripts: map[string]string{"start": "node app.js"},
			want: []string{"sh", "-c", "npm run migrate && node --watch " + boot}, script: "app.js"},
		{name: "shell: exec npm start with args, script in sh", argv: []string{"sh", "-c", `exec npm start -- --port "$PORT"`},
			scripts: map[string]string{"start": "NODE_ENV=production node app.js"},
			want:    []string{"sh", "-c", `exec /bin/sh -c 'NODE_ENV=production exec node --watch ` + boot + ` "$@"' sh --port "$PORT"`}, script: "app.js"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s, err := Parse(c.argv)
			var inv *Invocation
			if err == nil {
				inv = s.Node
				if s.Script != nil {
					inv, err = ResolveScript(s.Script, c.scripts)
				}
			}
			if c.err != "" {
				switch {
				case err == nil:
					t.Fatalf("no error, want %q", c.err)
				case c.err == "not node" && !IsNotNode(err):
					t.Fatalf("error %q is not a NotNodeError", err)
				case c.err != "not node" && (!strings.Contains(err.Error(), c.err) || IsNotNode(err)):
					t.Fatalf("error %q, want one with %q", err, c.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if inv.Script != c.script {
				t.Errorf("script %q, want %q", inv.Script, c.script)
			}
			got := s.Rewrite(boot, inv)
			if !slices.Equal(got, c.want) {
				t.Errorf("rewrite:\n got %q\nwant %q", got, c.want)
			}
			if !Mentions(got, boot) || Mentions(c.argv, boot) {
				t.Errorf("Mentions(rewrite) = false or Mentions(original) = true")
			}
		})
	}
}

// TestRewriteRunsInShell runs shell lines that Rewrite makes through the
// machine's sh, with a fake node on the PATH that prints its arguments and
// NODE_ENV, so that a real shell proves the quoting, the assignments and
// the arguments passed as "$@".
func TestRewriteRunsInShell(t *testing.T) {
	if _, err := exec.LookPath("sh"); err != nil {
		t.Skip("no sh:", err)
	}
	bin := t.TempDir()
	fake := "#!/bin/sh\nprintf '%s|' \"NODE_ENV=$NODE_ENV\" \"$@\"\n"
	if err := os.WriteFile(filepath.Join(bin, "node"), []byte(fake), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		argv    []string
		scripts map[string]string
		want    string
	}{
		{[]string{"npm", "start", "--", "a b", "$HOME"}, map[string]string{"start": "NODE_ENV=production node app.js --port $PORT"},
			"NODE_ENV=production|--watch|" + boot + "|--port|8080|a b|$HOME|"},
		{[]string{"sh", "-c", `PORT=9 exec npm start -- --port "$PORT" 'x y'`}, map[string]string{"start": "cross-env NODE_ENV=dev node app.js"},
			"NODE_ENV=dev|--watch|" + boot + "|--port|8080|x y|"},
		{[]string{"sh", "-c", `true && node --inspect 'my app.js' "$@"`, "sh", "-p", "1"}, nil,
			"NODE_ENV=|--inspect|--watch|" + boot + "|-p|1|"},
	} {
		s, err := Parse(c.argv)
		if err != nil {
			t.Fatal(err)
		}
		inv := s.Node
		if s.Script != nil {
			if inv, err = ResolveScript(s.Script, c.scripts); err != nil {
				t.Fatal(err)
			}
		}
		argv := s.Rewrite(boot, inv)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = []string{"PATH=" + bin + ":/usr/bin:/bin", "PORT=8080"}
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("%q: %v: %s", argv, err, out)
		}
		if string(out) != c.want {
			t.Errorf("%q printed\n %q, want\n %q", argv, out, c.want)
		}
	}
}

func TestShellWordsRoundTrip(t *testing.T) {
	for _, line := range []string{
		`a 'b c' "d $E f" g\ h`,
		`x=$(echo "a && b") && node app.js`,
		"# comment\nnode a.js # trailing",
		"a `b; c` d",
		`echo ${X:-"a;b"} ; node a.js`,
	} {
		ws, err := shellWords(line)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		for _, w := range ws {
			if line[w.start:w.end] != w.raw {
				t.Errorf("%q: word %q at %d:%d", line, w.raw, w.start, w.end)
			}
		}
	}
	got, err := lastCommand(`x=$(echo "a && b") && node app.js`)
	if err != nil || len(got) != 2 || got[0].value != "node" {
		t.Fatalf("last command %+v, %v", got, err)
	}
	if got, _ := lastCommand("echo ${X:-\"a;b\"} ; node a.js"); len(got) != 2 {
		t.Fatalf("last command after ${...;...}: %+v", got)
	}
	if got, _ := lastCommand("node a.js # x && b"); len(got) != 2 {
		t.Fatalf("comment: %+v", got)
	}
}
