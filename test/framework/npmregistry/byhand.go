package npmregistry

import (
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/aether-dev/aether-devhot/test/framework/realpod"
)

// byHand is the script NpmCIByHand runs with the container's node: a
// fresh directory holding the package.json and lockfile it reads from
// stdin, `npm ci` there with the settings boot.cjs gives its installs (a
// fresh cache, no audit, no fund), and the milliseconds npm took.
const byHand = `
const fs = require('node:fs'), os = require('node:os'), path = require('node:path'), cp = require('node:child_process');
const input = JSON.parse(fs.readFileSync(0, 'utf8'));
const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'npm-ci-by-hand-'));
fs.writeFileSync(path.join(dir, 'package.json'), input.packageJSON);
fs.writeFileSync(path.join(dir, 'package-lock.json'), input.lock);
let npm = '';
for (const d of (process.env.PATH || '').split(':').concat(path.dirname(process.execPath))) {
  if (fs.existsSync(path.join(d, 'npm'))) { npm = fs.realpathSync(path.join(d, 'npm')); break; }
}
const env = { ...process.env, npm_config_cache: path.join(dir, '.cache'), npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', npm_config_progress: 'false' };
const began = Date.now();
cp.execFileSync(process.execPath, [npm, 'ci'], { cwd: dir, env, stdio: ['ignore', 'ignore', 'inherit'] });
const ms = Date.now() - began;
fs.rmSync(dir, { recursive: true, force: true });
console.log(ms);
`

// NpmCIByHand runs `npm ci` by hand in container of pod, as a developer
// would with kubectl exec, on packageJSON and lock, and returns how long
// npm took: the baseline of the install that a push runs there.
func NpmCIByHand(k realpod.Kubectl, pod, container string, packageJSON, lock []byte) (time.Duration, error) {
	in, err := json.Marshal(map[string]string{"packageJSON": string(packageJSON), "lock": string(lock)})
	if err != nil {
		return 0, err
	}
	out, err := k.Run(string(in), "exec", "-i", pod, "-c", container, "--", "node", "-e", byHand)
	if err != nil {
		return 0, fmt.Errorf("npm ci by hand in %s: %w", pod, err)
	}
	ms, err := strconv.Atoi(strings.TrimSpace(out))
	if err != nil {
		return 0, fmt.Errorf("npm ci by hand in %s printed %q", pod, out)
	}
	return time.Duration(ms) * time.Millisecond, nil
}
