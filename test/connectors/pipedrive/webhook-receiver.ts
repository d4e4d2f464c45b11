/** A loopback HTTP server that records webhook POSTs (tests of the Pipedrive sandbox and connector). */
import { createServer, type IncomingMessage, type Server } from 'node:http';

export interface ReceivedWebhook {
  path: string;
  headers: IncomingMessage['headers'];
  rawBody: Buffer;
  body: unknown;
}

export interface WebhookReceiver {
  url: string;
  received: ReceivedWebhook[];
  /** Status to answer with, per request (default 200). */
  respond: (hook: ReceivedWebhook, index: number) => number;
  /** Resolves once `n` webhooks matching `filter` arrived (or rejects after `timeoutMs`). */
  waitFor(n: number, filter?: (hook: ReceivedWebhook) => boolean, timeoutMs?: number): Promise<ReceivedWebhook[]>;
  close(): Promise<void>;
}

export async function startWebhookReceiver(): Promise<WebhookReceiver> {
  const received: ReceivedWebhook[] = [];
  const receiver: WebhookReceiver = {
    url: '',
    received,
    respond: () => 200,
    async waitFor(n, filter = () => true, timeoutMs = 10_000) {
      const deadline = Date.now() + timeoutMs;
      for (;;) {
        const hits = received.filter(filter);
        if (hits.length >= n) return hits;
        if (Date.now() > deadline) throw new TypeError(`expected ${n} webhooks, got ${hits.length}`);
        await new Promise((r) => setTimeout(r, 10));
      }
    },
    async close() {
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const rawBody = Buffer.concat(chunks);
      let body: unknown = null;
      try {
        body = JSON.parse(rawBody.toString('utf8'));
      } catch {
        body = rawBody.toString('utf8');
      }
      const hook: ReceivedWebhook = { path: req.url ?? '/', headers: req.headers, rawBody, body };
      received.push(hook);
      res.statusCode = receiver.respond(hook, received.length - 1);
      res.end('{}');
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', () => resolve()));
  const address = server.address();
  receiver.url = `http://127.0.0.1:${typeof address === 'object' && address ? address.port : 0}`;
  return receiver;
}
