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
const Module = require('node:module');
const { pathToFileURL } = require('node:url');

const maxMessage = 2000;
const maxFrames = 5;

// AETHER_APP_DIR, when set, is the app's own directory in its image ("."
// for the working directory this process started in): the pod runs the
// image's code from there until the first release (release zero), and
// releases that carry no node_modules resolve the image's.
const appDir = process.env.AETHER_APP_DIR ? path.resolve(process.env.AETHER_APP_DIR) : '';
const workspace = path.dirname(__dirname);

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

// recordLoaded writes the record: the release this process runs ("" for
// the image's own code), where the app's directory is, whether the entry
// has loaded, and exit once it has exited. The rename makes each record
// atomic; node --watch ignores the file because the app never loads it.
function recordLoaded(exit) {
  const file = path.join(__dirname, 'loaded');
  const tmp = `${file}.${process.pid}.tmp`;
  const record = { digest, pid: process.pid, time: new Date().toISOString(), ready };
  if (appDir) record.appDir = appDir;
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
