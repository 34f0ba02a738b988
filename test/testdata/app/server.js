'use strict';
// Test app for test/node. Answers GET / with {version, pid, starts}: version
// comes from version.json in the release, starts counts every start so far
// (one line per start in $APP_STATE_DIR/starts).
const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');

const { version, startDelayMs } = require('./version.json');
// A slow start, as in an app that requires a big tree or warms a cache.
if (startDelayMs) {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, startDelayMs);
}
const startsFile = path.join(process.env.APP_STATE_DIR, 'starts');
fs.appendFileSync(startsFile, `${version} ${process.pid}\n`);
const starts = fs.readFileSync(startsFile, 'utf8').trim().split('\n').length;

const server = http.createServer((req, res) => {
  res.setHeader('content-type', 'application/json');
  res.end(JSON.stringify({ version, pid: process.pid, starts }));
});

// Listening only when run directly checks that boot.cjs starts the entry as
// the main module, as `node server.js` would.
if (require.main === module) {
  server.listen(Number(process.env.PORT), '127.0.0.1');
}

// Without this, open keep-alive connections could hold a restart open.
process.on('SIGTERM', () => {
  server.close(() => process.exit(0));
  server.closeAllConnections();
});
