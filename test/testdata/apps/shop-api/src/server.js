'use strict';

const express = require('express');
const message = require('./message');
const products = require('./products');

const app = express();
const name = process.env.APP_NAME || 'shop-api';
const port = Number(process.env.PORT || 8080);
const startedAt = new Date().toISOString();

app.disable('x-powered-by');
app.use(express.json());

app.get('/', (req, res) => {
  res.json({ app: name, message, pid: process.pid, node: process.version, env: process.env.NODE_ENV || '', startedAt });
});

app.get('/healthz', (req, res) => {
  res.json({ status: 'ok' });
});

app.get('/products', (req, res) => {
  res.json(products.list());
});

app.get('/products/:id', (req, res) => {
  const p = products.find(Number(req.params.id));
  if (!p) {
    res.status(404).json({ error: 'not found' });
    return;
  }
  res.json(p);
});

const server = app.listen(port, () => {
  console.log(`${name} listening on :${port} (pid ${process.pid})`);
});

for (const signal of ['SIGTERM', 'SIGINT']) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
