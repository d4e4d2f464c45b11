import { it } from 'vitest';
import { startHub, WRITE_AUTH } from './support/hub.ts';
import { seed, stats } from './support/sandbox-control.ts';
import { HOST } from './support/http-checks.ts';

it('probe', async () => {
  const N = Number(process.env['N'] ?? 200);
  const hub = await startHub({ file: true });
  const t0 = Date.now();
  await seed(hub.sandboxes.get('hubspot')!, 'contacts', N);
  await seed(hub.sandboxes.get('salesforce')!, 'Contact', N);
  await seed(hub.sandboxes.get('pipedrive')!, 'persons', N);
  for (let i = 0; i < N; i += 100) {
    const batch = Array.from({ length: Math.min(100, N - i) }, (_, k) => ({ type: 'identify', userId: `p-${i + k}`, messageId: `m-${i + k}`, traits: { email: `person${i + k}@probe.example`, first_name: `P${i + k}`, plan: 'pro' } }));
    const r = await hub.app.inject({ method: 'POST', url: '/v1/batch', headers: { host: HOST, authorization: WRITE_AUTH, 'content-type': 'application/json' }, payload: JSON.stringify({ batch }) });
    if (r.statusCode !== 200) throw new Error(r.body);
  }
  console.log('seeded', Date.now() - t0);
  for (let round = 0; round < 6; round++) {
    const t = Date.now();
    const s = await hub.engine.runOnce({ direction: 'both' });
    console.log('round', round, Date.now() - t, JSON.stringify(s.objects.map((o) => [o.connector, o.object, o.status, o.created, o.updated, o.failed, o.pending, o.apiCalls, o.error?.slice(0, 150)])));
  }
  for (const s of hub.sandboxes.values()) console.log(s.slug, JSON.stringify((await stats(s)).records), (await stats(s)).totalCalls);
  console.log('dlq', JSON.stringify((await hub.store.listDeadLetters({ limit: 5, includeReplayed: false })).map((d) => d)).slice(0, 800));
  await hub.close();
});
