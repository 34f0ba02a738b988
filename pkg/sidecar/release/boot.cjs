'use strict';
// aether-devhot boot script. The fetcher writes it once as
// <workspace>/.aether/boot.cjs and never replaces it: `node --watch` watches
// this file's inode, and the fetcher touches it to restart the app after it
// has published a release.
//
// It tells the fetcher, in .aether/loaded, which release this process runs
// and how far it got: chosen, loaded (ready), and exited with the error
// that ended it. That record is the fetcher's health gate: a release whose
// process exits before it is ready is rolled back.
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');
const Module = require('node:module');
const { fileURLToPath, pathToFileURL } = require('node:url');

const maxMessage = 2000;
const maxFrames = 5;

// AETHER_APP_DIR, when set, is the app's own directory in its image ("."
// for the working directory this process started in): the pod runs the
// image's code from there until the first release (release zero), and
// releases that carry no node_modules resolve the image's.
const appDir = process.env.AETHER_APP_DIR ? path.resolve(process.env.AETHER_APP_DIR) : '';
const workspace = path.dirname(__dirname);

// watchReports lists, in .aether/watched, the inode of each file that
// node --watch watches. The watcher has its child, this process, report
// each file it loads (watch:require, watch:import) to it over IPC; this
// sees each report on its way out. The fetcher never gives such an inode
// another link, nor takes one of its links away: either changes the
// inode's link count, which restarts the app (watched.go). The first line
// names the watching process, so that a new container starts a new list.
function watchReports() {
  const send = process.send;
  if (typeof send !== 'function' || !process.env.WATCH_REPORT_DEPENDENCIES) return;
  const file = path.join(__dirname, 'watched');
  const head = `ppid ${process.ppid}`;
  // The inodes listed already, by this watcher's earlier children: each
  // is listed once, so that the list grows only by what changes.
  const listed = new Set();
  try {
    let lines = [];
    try {
      lines = fs.readFileSync(file, 'utf8').split('\n');
    } catch {
      // No list yet.
    }
    if (lines[0] === head) {
      for (const l of lines.slice(1)) if (l) listed.add(l);
    } else {
      const tmp = `${file}.${process.pid}.tmp`;
      fs.writeFileSync(tmp, `${head}\n`);
      fs.chmodSync(tmp, 0o644);
      fs.renameSync(tmp, file);
    }
  } catch (err) {
    console.error(`aether boot: cannot list the files node --watch watches: ${err.message}`);
    return;
  }
  process.send = function sendAndRecord(msg, ...rest) {
    const files = msg && (msg['watch:require'] || msg['watch:import']);
    if (Array.isArray(files)) {
      let lines = '';
      for (const f of files) {
        try {
          const ino = typeof f === 'string' && String(fs.statSync(f.startsWith('file:') ? fileURLToPath(f) : f).ino);
          if (ino && !listed.has(ino)) {
            listed.add(ino);
            lines += `${ino}\n`;
          }
        } catch {
          // Gone already: nothing to protect.
        }
      }
      try {
        if (lines) fs.appendFileSync(file, lines);
      } catch (err) {
        console.error(`aether boot: cannot list the files node --watch watches: ${err.message}`);
      }
    }
    return send.call(this, msg, ...rest);
  };
}
watchReports();

// Resolve current to releases/<hex>: the app then loads, and node --watch
// watches, paths that no other release uses, so deleting an old release is
// never mistaken for a change to the running one.
let root;
let digest = '';
try {
  root = fs.realpathSync(path.join(workspace, 'current'));
  digest = `sha256:${path.basename(root)}`;
} catch (err) {
  if (!appDir) {
    console.error(`aether boot: no release is published in ${workspace} yet (${err.code || err.message})`);
    process.exit(1);
  }
  root = appDir;
}

let ready = false;
let fatal;
// deps is what the record says of the release's dependencies, when it
// resolves them through the workspace's cache (see prepareDeps).
let deps;
// installer is set once this process takes the fetcher's install requests.
let installer = false;

// recordLoaded writes the record: the release this process runs ("" for
// the image's own code), where the app's directory is, whether the entry
// has loaded, and exit once it has exited. The rename makes each record
// atomic; node --watch ignores the file because the app never loads it.
function recordLoaded(exit) {
  const file = path.join(__dirname, 'loaded');
  const tmp = `${file}.${process.pid}.tmp`;
  const record = { digest, pid: process.pid, time: new Date().toISOString(), ready };
  if (appDir) record.appDir = appDir;
  if (deps) record.deps = deps;
  if (installer) record.installer = true;
  if (exit) record.exit = exit;
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(record)}\n`);
    // Readable by the fetcher's uid whatever the app's umask.
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, file);
  } catch (err) {
    console.error(`aether boot: cannot record the loaded release: ${err.message}`);
  }
}

// describe keeps what tells a developer where their code broke: the name,
// message and code of err, and the top frames of its stack that point
// into the running code, with paths relative to it. A SyntaxError's stack
// starts with its location, "<file>:<line>", instead of a frame.
function describe(err) {
  const dir = `${root}${path.sep}`;
  const url = `${pathToFileURL(root).href}/`;
  const relative = (text) => text.split(url).join('').split(dir).join('');
  if (err === null || (typeof err !== 'object' && typeof err !== 'function')) {
    return { name: 'Error', message: `a non-error was thrown: ${String(err)}`.slice(0, maxMessage) };
  }
  const out = { name: String(err.name || 'Error'), message: relative(String(err.message ?? '')).slice(0, maxMessage), frames: [] };
  if (err.code !== undefined) out.code = String(err.code);
  const stack = typeof err.stack === 'string' ? err.stack.split('\n') : [];
  const at = /^(?:file:\/\/)?(\/.*):\d+$/.exec(stack[0] || '');
  if (at && at[1].startsWith(dir)) out.frames.push(relative(stack[0]));
  for (const line of stack) {
    if (out.frames.length >= maxFrames) break;
    const frame = line.trim();
    if (frame.startsWith('at ') && (frame.includes(dir) || frame.includes(url))) {
      out.frames.push(relative(frame));
    }
  }
  if (out.frames.length === 0) delete out.frames;
  return out;
}

// The error that ends the process goes into the exit record. The monitor
// only watches, so the app's own handlers and Node's printing of the
// error are unchanged.
process.on('uncaughtExceptionMonitor', (err) => {
  fatal = describe(err);
});

// Every exit that Node reports (process.exit, an uncaught error, an empty
// event loop) is recorded; a signal, such as node --watch's SIGTERM on
// restart, ends the process without one.
process.on('exit', (code) => {
  const exit = { code, time: new Date().toISOString() };
  if (fatal) exit.error = fatal;
  recordLoaded(exit);
});

// fail ends a process that cannot start the entry, with the reason in the
// exit record.
function fail(message) {
  console.error(`aether boot: ${message}`);
  fatal = { name: 'Error', message };
  process.exit(1);
}

// The first record tells the fetcher which release this process chose, so
// that it stops touching boot.cjs however long the app takes to load.
recordLoaded();

const entry = process.env.AETHER_ENTRY;
if (!entry) {
  fail('AETHER_ENTRY is not set; it names the entry script relative to the artifact root');
}
if (path.isAbsolute(entry) || path.relative(root, path.resolve(root, entry)).startsWith('..')) {
  fail(`AETHER_ENTRY ${entry} must be a path relative to the artifact root`);
}
let main;
try {
  main = require.resolve(path.resolve(root, entry));
} catch {
  main = path.resolve(root, entry);
  if (!fs.existsSync(main)) {
    fail(`AETHER_ENTRY ${entry} not found in ${digest ? `release ${path.basename(root)}` : `the image's ${root}`}`);
  }
}

// isModule follows Node's own rule for an entry point: .mjs is ESM, .cjs is
// CommonJS, anything else takes "type" from the nearest package.json.
function isModule(file) {
  if (file.endsWith('.mjs')) return true;
  if (file.endsWith('.cjs')) return false;
  for (let dir = path.dirname(file); ; dir = path.dirname(dir)) {
    const pkg = path.join(dir, 'package.json');
    if (fs.existsSync(pkg)) {
      try {
        return JSON.parse(fs.readFileSync(pkg, 'utf8')).type === 'module';
      } catch {
        return false;
      }
    }
    if (dir === path.dirname(dir)) return false;
  }
}

// awaitImageModules gives the fetcher, which cannot see this container's
// filesystem, up to two seconds to link releases/node_modules to the
// image's node_modules once the record above has told it where they are;
// it only waits when a release without node_modules of its own starts
// before the fetcher has learnt the app's directory.
function awaitImageModules() {
  if (!digest || !appDir || fs.existsSync(path.join(root, 'node_modules'))) return;
  const link = path.join(workspace, 'releases', 'node_modules');
  const pause = new Int32Array(new SharedArrayBuffer(4));
  for (let waited = 0; waited < 2000; waited += 20) {
    try {
      if (fs.readlinkSync(link) === path.join(appDir, 'node_modules')) return;
    } catch {
      // not there yet
    }
    Atomics.wait(pause, 0, 0, 20);
  }
  console.error(`aether boot: ${link} does not lead to ${path.join(appDir, 'node_modules')}; the image's packages may not be found`);
}

function loaded() {
  ready = true;
  recordLoaded();
}

function start() {
  awaitImageModules();
  process.chdir(root);
  // The app sees itself as the entry point, as under `node <entry>`.
  process.argv[1] = main;
  if (isModule(main)) {
    // A rejection is left unhandled, so that Node prints it and exits as it
    // would without boot.cjs; the monitor above records it.
    import(pathToFileURL(main).href).then(loaded);
  } else {
    // runMain, unlike require, makes require.main === module in the entry, so
    // apps that listen only when run directly still start.
    Module.runMain(main);
    loaded();
  }
}

// Dependencies (docs/dependencies.md). A release that carries a
// package.json and a lockfile gets from the fetcher a node_modules link to
// .aether/deps/<sha256 of the lockfile>/node_modules, which a process of
// the app fills once per lockfile in the pod: the running one, asked by
// the fetcher before it publishes the release (takeRequests), or else the
// release's own before its entry script loads. The entry is a link to the
// image's node_modules when the lockfile is the image's, else an install
// by the image's own package manager, which builds native modules for
// this container's platform. Each entry is made under a temporary name
// and renamed into place, so one that exists is complete.

// lockfiles is sidecar.Lockfiles, in its order.
const lockfiles = ['npm-shrinkwrap.json', 'package-lock.json', 'pnpm-lock.yaml', 'yarn.lock'];
const depsDir = path.join(__dirname, 'deps');
const depsLink = /^\.\.\/\.\.\/\.aether\/deps\/([0-9a-f]{64})\/node_modules$/;
// depsInfo is the file in each entry that says how it was made.
const depsInfo = 'aether-deps.json';
// maxOutput bounds the package manager's output kept; maxLines how many
// of its lines the record carries.
const maxOutput = 16 << 10;
const maxLines = 12;

// depsKeyOf returns the key of dir's node_modules link into the cache, ''
// when it has none.
function depsKeyOf(dir) {
  try {
    const m = depsLink.exec(fs.readlinkSync(path.join(dir, 'node_modules')));
    return m ? m[1] : '';
  } catch {
    return '';
  }
}

function isFile(file) {
  try {
    return fs.statSync(file).isFile();
  } catch {
    return false;
  }
}

// temp is a new name in the cache for work in progress: .tmp-<pid>-<what>,
// so that pruneDeps knows whose it is.
function temp(what) {
  return path.join(depsDir, `.tmp-${process.pid}-${what}`);
}

// managerOf says which package manager installs a lockfile, and how.
function managerOf(lockfile, content) {
  switch (lockfile) {
    case 'pnpm-lock.yaml':
      return { name: 'pnpm', args: ['install', '--frozen-lockfile'] };
    case 'yarn.lock':
      // Yarn 2+ writes __metadata; it spells "frozen" --immutable.
      return { name: 'yarn', args: ['install', content.includes('__metadata:') ? '--immutable' : '--frozen-lockfile'] };
  }
  return { name: 'npm', args: ['ci'] };
}

// which finds an executable on PATH or beside node; '' when none.
function which(name) {
  const dirs = (process.env.PATH || '').split(path.delimiter).filter(Boolean);
  dirs.push(path.dirname(process.execPath));
  for (const dir of dirs) {
    const file = path.join(dir, name);
    try {
      fs.accessSync(file, fs.constants.X_OK);
      if (fs.statSync(file).isFile()) return file;
    } catch {
      // not here
    }
  }
  return '';
}

// whyFailed keeps what tells why an install failed, from the end of the
// package manager's output: npm's error block, which it prints last, from
// its start (the code, the request or the command that failed), without
// stack frames, error objects' fields, blank lines or the pointer to its
// log, which is gone with the install's cache; for another manager, its
// last lines.
function whyFailed(text) {
  const lines = text.split('\n').map((l) => l.trimEnd()).filter(Boolean);
  const npm = lines.filter((l) => /^npm (error|ERR!)/.test(l));
  if (npm.length === 0) return lines.slice(-maxLines).join('\n');
  return npm
    .filter((l) => !/^npm (error|ERR!)( \d+| *\}?)$/.test(l) && !/^npm (error|ERR!) {2,}/.test(l) && !/A complete log of this run can be found in/.test(l))
    .slice(0, maxLines)
    .join('\n');
}

// publishEntry renames the entry made in tmp into place; an entry that a
// process of an earlier start made meanwhile is as good.
function publishEntry(tmp, entry, info) {
  // A lockfile with no packages installs no node_modules; the entry
  // still needs one, empty, to be complete.
  try {
    fs.lstatSync(path.join(tmp, 'node_modules'));
  } catch {
    fs.mkdirSync(path.join(tmp, 'node_modules'));
  }
  fs.writeFileSync(path.join(tmp, depsInfo), `${JSON.stringify(info)}\n`);
  try {
    fs.renameSync(tmp, entry);
  } catch (err) {
    if (!fs.existsSync(path.join(entry, 'node_modules'))) throw err;
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

// getDeps gets the dependencies of the release in dir, whose lockfile has
// key, and calls done with what it did: { state, lockfile, key, manager,
// ms } for cached, image and installed, or { state: 'failed', reason,
// message, output }. It calls installing first when it runs the package
// manager, and returns that child, or nothing when done was called
// already.
function getDeps(dir, key, installing, done) {
  const lockfile = lockfiles.find((l) => isFile(path.join(dir, l)));
  const d = { lockfile: lockfile || '', key, state: 'cached' };
  const failed = (reason, message, output) => done({ ...d, state: 'failed', reason, message, output });
  const entry = path.join(depsDir, key);
  if (fs.existsSync(path.join(entry, 'node_modules'))) {
    try {
      if (JSON.parse(fs.readFileSync(path.join(entry, depsInfo), 'utf8')).state === 'image') d.state = 'image';
    } catch {
      // an entry without its info was installed
    }
    return void done(d);
  }
  if (!lockfile) {
    return void failed('deps_install_failed', `release ${path.basename(dir)} links its node_modules to a lockfile it does not carry`);
  }
  const content = fs.readFileSync(path.join(dir, lockfile));
  fs.mkdirSync(depsDir, { recursive: true });
  if (appDir && isFile(path.join(appDir, lockfile)) && fs.readFileSync(path.join(appDir, lockfile)).equals(content)) {
    // The image's lockfile: its node_modules are these dependencies.
    const tmp = temp(key);
    fs.mkdirSync(tmp);
    fs.symlinkSync(path.join(appDir, 'node_modules'), path.join(tmp, 'node_modules'));
    publishEntry(tmp, entry, { state: 'image' });
    return void done({ ...d, state: 'image' });
  }
  const m = managerOf(lockfile, content.toString('utf8'));
  const command = `${m.name} ${m.args.join(' ')}`;
  d.manager = m.name;
  let bin = which(m.name);
  if (!bin) {
    return void failed('no_package_manager', `${lockfile} needs ${m.name}, and the app's image has none (not on PATH=${process.env.PATH || ''}, nor beside ${process.execPath}): add ${m.name} to the image, or push the lockfile the image was built with`);
  }
  let args = m.args;
  // npm, pnpm and yarn are scripts for node: run them with this node, so
  // that an image without /usr/bin/env still can.
  const real = fs.realpathSync(bin);
  if (/\.[cm]?js$/.test(real)) {
    args = [real, ...args];
    bin = process.execPath;
  }
  const tmp = temp(key);
  const cache = temp(`cache-${key}`);
  fs.mkdirSync(tmp);
  for (const f of ['package.json', lockfile, '.npmrc', '.yarnrc', '.yarnrc.yml', 'pnpm-workspace.yaml']) {
    if (isFile(path.join(dir, f))) fs.copyFileSync(path.join(dir, f), path.join(tmp, f));
  }
  const env = { ...process.env };
  // The install's cache lives and dies with it, in the workspace: the
  // image's HOME may be read-only, and the volume must not grow.
  const defaults = { npm_config_cache: cache, npm_config_audit: 'false', npm_config_fund: 'false', npm_config_update_notifier: 'false', npm_config_progress: 'false' };
  for (const [k, v] of Object.entries(defaults)) {
    if (env[k] === undefined && env[k.toUpperCase()] === undefined) env[k] = v;
  }
  installing({ ...d, state: 'installing' });
  console.error(`aether boot: installing the dependencies of ${lockfile} with ${command}`);
  const began = Date.now();
  let output = '';
  const child = spawn(bin, args, { cwd: tmp, env, stdio: ['ignore', 'pipe', 'pipe'] });
  const keep = (chunk) => {
    process.stderr.write(chunk);
    output = (output + chunk.toString('utf8')).slice(-maxOutput);
  };
  child.stdout.on('data', keep);
  child.stderr.on('data', keep);
  // The install ends with this process, whoever ends it.
  const stop = () => child.kill('SIGTERM');
  process.once('exit', stop);
  const cleanup = () => {
    process.removeListener('exit', stop);
    fs.rmSync(cache, { recursive: true, force: true });
  };
  child.on('error', (err) => {
    cleanup();
    failed('no_package_manager', `${command} could not start: ${err.message}`);
  });
  child.on('close', (code, signal) => {
    cleanup();
    if (code !== 0) {
      fs.rmSync(tmp, { recursive: true, force: true });
      return void failed('deps_install_failed', `${command} failed (${signal ? `signal ${signal}` : `exit code ${code}`})`, whyFailed(output));
    }
    const ms = Date.now() - began;
    try {
      publishEntry(tmp, entry, { state: 'installed', manager: m.name, ms });
    } catch (err) {
      return void failed('deps_install_failed', `cannot keep the installed dependencies in ${entry}: ${err.message}`);
    }
    console.error(`aether boot: installed the dependencies of ${lockfile} in ${ms} ms`);
    done({ ...d, state: 'installed', ms });
  });
  return child;
}

// Install requests. While the app runs, the fetcher may ask this process,
// in .aether/install, for the dependencies of a release it has staged and
// not published yet, and waits for the answer in .aether/install-result
// before it publishes: the app keeps serving its release while the next
// one's dependencies install, and a failed install changes nothing. A
// request names the release's directory, relative to the workspace.
const requestFile = path.join(__dirname, 'install');
const resultFile = path.join(__dirname, 'install-result');
const requestEvery = 100;

function writeState(file, value) {
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, `${JSON.stringify(value)}\n`);
  fs.chmodSync(tmp, 0o644);
  fs.renameSync(tmp, file);
}

// takeRequests answers the fetcher's install requests, one at a time,
// each once, until this process ends; its timer keeps no process alive.
function takeRequests() {
  let handled = '';
  // active is the request whose install runs; a newer request for the
  // same lockfile (the push after a cancelled one) takes its answers.
  let active = null;
  const answer = (d) => {
    try {
      writeState(resultFile, { id: active.id, deps: d });
    } catch (err) {
      console.error(`aether boot: cannot answer the fetcher's install request: ${err.message}`);
    }
  };
  let last;
  const look = () => {
    let req;
    try {
      if (!fs.lstatSync(requestFile).isFile()) return;
      req = JSON.parse(fs.readFileSync(requestFile, 'utf8'));
    } catch {
      return;
    }
    if (!req || typeof req.id !== 'string' || req.id === handled) return;
    if (active && active.busy) {
      if (req.key !== active.key) return;
      handled = req.id;
      active.id = req.id;
      answer(last);
      return;
    }
    handled = req.id;
    active = { id: req.id, key: req.key, busy: false };
    if (!/^[0-9a-f]{64}$/.test(req.key || '') || !/^releases\/[^/]+$/.test(req.dir || '') || req.dir.endsWith('/..')) {
      return answer({ state: 'failed', reason: 'deps_install_failed', message: `the fetcher's install request ${JSON.stringify(req).slice(0, 200)} is not one` });
    }
    active.busy = true;
    const installing = (d) => {
      last = d;
      answer(d);
    };
    const done = (d) => {
      active.busy = false;
      answer(d);
    };
    try {
      getDeps(path.join(workspace, req.dir), req.key, installing, done);
    } catch (err) {
      done({ key: req.key, state: 'failed', reason: 'deps_install_failed', message: `cannot prepare the dependencies in ${depsDir}: ${err.message}` });
    }
  };
  setInterval(look, requestEvery).unref();
  installer = true;
}

// pruneDeps removes, in the background, the cache's entries that no
// release on disk links to (the fetcher keeps the last three), and what
// processes that have exited left in progress.
function pruneDeps() {
  let names;
  try {
    names = fs.readdirSync(depsDir);
  } catch {
    return;
  }
  const used = new Set();
  const releases = path.join(workspace, 'releases');
  try {
    for (const r of fs.readdirSync(releases)) {
      const k = /^[0-9a-f]{64}$/.test(r) && depsKeyOf(path.join(releases, r));
      if (k) used.add(k);
    }
  } catch {
    return;
  }
  for (const name of names) {
    const tmp = /^\.tmp-(\d+)-/.exec(name);
    if (tmp ? alive(Number(tmp[1])) : !/^[0-9a-f]{64}$/.test(name) || used.has(name)) continue;
    const trash = temp(`trash-${name}`);
    try {
      fs.renameSync(path.join(depsDir, name), trash);
    } catch {
      continue;
    }
    fs.rm(trash, { recursive: true, force: true }, () => {});
  }
}

function alive(pid) {
  if (pid === process.pid) return true;
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

function go() {
  pruneDeps();
  takeRequests();
  start();
}

// A release whose dependencies are not there yet gets them before its
// entry loads; a failure ends this process with its reason in the record.
const releaseKey = depsKeyOf(root);
if (digest && releaseKey) {
  const recordDeps = (d) => {
    deps = d;
    recordLoaded();
  };
  const ready = (d) => {
    if (d.state !== 'failed') {
      deps = d;
      return go();
    }
    deps = { lockfile: d.lockfile, key: d.key, state: 'failed', reason: d.reason };
    if (d.manager) deps.manager = d.manager;
    if (d.output) deps.output = d.output;
    fail(d.output ? `${d.message}:\n${d.output}` : d.message);
  };
  // What getDeps answers at once is acted on after the try, so that the
  // entry's own errors are never taken for the dependencies'.
  let child;
  let now;
  let inside = true;
  try {
    child = getDeps(root, releaseKey, recordDeps, (d) => (inside ? (now = d) : ready(d)));
  } catch (err) {
    now = { key: releaseKey, state: 'failed', reason: 'deps_install_failed', message: `cannot prepare the dependencies in ${depsDir}: ${err.message}` };
  }
  inside = false;
  if (now) ready(now);
  if (child) {
    // node --watch stops this process with SIGTERM when a newer release
    // is published: the install stops with it, and the signal then ends
    // this process as it would have. The app has no handlers yet.
    const stop = (signal) => {
      child.kill('SIGTERM');
      process.removeAllListeners(signal);
      process.kill(process.pid, signal);
    };
    process.once('SIGTERM', stop);
    process.once('SIGINT', stop);
    child.on('close', () => {
      process.removeListener('SIGTERM', stop);
      process.removeListener('SIGINT', stop);
    });
  }
} else {
  go();
}
