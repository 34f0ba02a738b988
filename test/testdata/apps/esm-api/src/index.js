import { serve } from '@hono/node-server';
import { Hono } from 'hono';
import { logger } from 'hono/logger';
import { message } from './message.js';

const app = new Hono();
const port = Number(process.env.PORT || 3000);

app.use('*', logger());

app.get('/', (c) => c.json({ app: 'esm-api', message, pid: process.pid, ppid: process.ppid, env: process.env.NODE_ENV || '', module: 'esm' }));

app.get('/health', (c) => c.json({ status: 'ok' }));

app.get('/echo/:word', (c) => c.json({ word: c.req.param('word') }));

const server = serve({ fetch: app.fetch, port }, (info) => {
  console.log(`esm-api listening on :${info.port} (pid ${process.pid})`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
