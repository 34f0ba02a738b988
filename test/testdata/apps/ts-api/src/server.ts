import path from 'path';
import express, { Request, Response } from 'express';
import { message } from './message';

const app = express();
const name: string = process.env.APP_NAME || 'ts-api';
const port: number = Number(process.env.PORT || 8080);

app.disable('x-powered-by');

app.get('/', (_req: Request, res: Response) => {
  // entry is the compiled file that runs, relative to the app's directory.
  res.json({ app: name, message, pid: process.pid, node: process.version, entry: path.relative(process.cwd(), __filename) });
});

app.get('/healthz', (_req: Request, res: Response) => {
  res.json({ status: 'ok' });
});

const server = app.listen(port, () => {
  console.log(`${name} listening on :${port} (pid ${process.pid})`);
});

for (const signal of ['SIGTERM', 'SIGINT'] as const) {
  process.on(signal, () => server.close(() => process.exit(0)));
}
