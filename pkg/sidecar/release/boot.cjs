'use strict';
// aether-devhot boot script. The fetcher writes it once as
// <workspace>/.aether/boot.cjs and never replaces it: `node --watch` watches
// this file's inode, and the fetcher touches it to restart the app after it
// has published a release.
const fs = require('node:fs');
const path = require('node:path');
const Module = require('node:module');
const { pathToFileURL } = require('node:url');

function fail(message) {
  console.error(`aether boot: ${message}`);
  process.exit(1);
}

const entry = process.env.AETHER_ENTRY;
if (!entry) {
  fail('AETHER_ENTRY is not set; it names the entry script relative to the artifact root');
}

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
    fail(`no release is published in ${workspace} yet (${err.code || err.message})`);
  }
  root = appDir;
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

// recordLoaded tells the fetcher which release this process runs ("" for
// the image's own code) and where the app's directory is: once when it
// has chosen the release, so that the fetcher stops touching boot.cjs
// however long the app takes to load, and again when the entry has
// loaded. The rename makes each record atomic; node --watch ignores the
// file because the app never loads it.
function recordLoaded(ready) {
  const file = path.join(__dirname, 'loaded');
  const tmp = `${file}.${process.pid}.tmp`;
  const record = { digest, pid: process.pid, time: new Date().toISOString(), ready };
  if (appDir) record.appDir = appDir;
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(record)}\n`);
    // Readable by the fetcher's uid whatever the app's umask.
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, file);
  } catch (err) {
    console.error(`aether boot: cannot record the loaded release: ${err.message}`);
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

recordLoaded(false);
awaitImageModules();
process.chdir(root);
// The app sees itself as the entry point, as under `node <entry>`.
process.argv[1] = main;
if (isModule(main)) {
  import(pathToFileURL(main).href).then(() => recordLoaded(true));
} else {
  // runMain, unlike require, makes require.main === module in the entry, so
  // apps that listen only when run directly still start.
  Module.runMain(main);
  recordLoaded(true);
}
