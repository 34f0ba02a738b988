'use strict';
// Preloaded with --require before index.js (the image's CMD): it records
// when the process started and times every HTTP request, as an APM agent
// would, by wrapping http.Server's 'request' event.
const http = require('node:http');
const onFinished = require('on-finished');

const tracing = {
  preloaded: true,
  startedAt: new Date().toISOString(),
  requests: 0,
  lastDurationMs: null,
};
globalThis.__tracing = tracing;

const emit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req, res) {
  if (event === 'request') {
    const start = process.hrtime.bigint();
    tracing.requests++;
    onFinished(res, () => {
      tracing.lastDurationMs = Number(process.hrtime.bigint() - start) / 1e6;
    });
  }
  return emit.apply(this, arguments);
};
