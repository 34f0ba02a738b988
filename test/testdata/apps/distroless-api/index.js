'use strict';

const http = require('node:http');
const message = require('./src/message');

const port = Number(process.env.PORT || 8080);

const server = http.createServer((req, res) => {
  const send = (status, body) => {
    res.writeHead(status, { 'content-type': 'application/json' });
    res.end(JSON.stringify(body));
  };
  if (req.method === 'GET' && req.url === '/') {
    send(200, { app: 'distroless-api', message, pid: process.pid, execPath: process.execPath, tracing: globalThis.__tracing || null });
  } else if (req.method === 'GET' && req.url === '/livez') {
    send(200, { status: 'ok' });
  } else {
    send(404, { error: 'not found' });
  }
});

server.listen(port, () => {
  console.log(`distroless-api listening on :${port} (pid ${process.pid}, tracing ${globalThis.__tracing ? 'on' : 'off'})`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
