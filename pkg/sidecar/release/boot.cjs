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

// Resolve current to releases/<hex>: the app then loads, and node --watch
// watches, paths that no other release uses, so deleting an old release is
// never mistaken for a change to the running one.
let root;
try {
  root = fs.realpathSync(path.join(__dirname, '..', 'current'));
} catch (err) {
  fail(`no release is published in ${path.dirname(__dirname)} yet (${err.code || err.message})`);
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
    fail(`AETHER_ENTRY ${entry} not found in release ${path.basename(root)}`);
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

// recordLoaded tells the fetcher which release this process runs: once
// when it has chosen the release, so that the fetcher stops touching
// boot.cjs however long the app takes to load, and again when the entry has
// loaded. The rename makes each record atomic; node --watch ignores the file
// because the app never loads it.
function recordLoaded(ready) {
  const file = path.join(__dirname, 'loaded');
  const tmp = `${file}.${process.pid}.tmp`;
  const record = {
    digest: `sha256:${path.basename(root)}`,
    pid: process.pid,
    time: new Date().toISOString(),
    ready,
  };
  try {
    fs.writeFileSync(tmp, `${JSON.stringify(record)}\n`);
    // Readable by the fetcher's uid whatever the app's umask.
    fs.chmodSync(tmp, 0o644);
    fs.renameSync(tmp, file);
  } catch (err) {
    console.error(`aether boot: cannot record the loaded release: ${err.message}`);
  }
}

recordLoaded(false);
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
