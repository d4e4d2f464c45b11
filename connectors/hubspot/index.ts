/**
 * The HubSpot connector module: builds the connector from `HUBSPOT_*` settings and starts the
 * HubSpot sandbox. Only the composition root imports this file.
 */
import { z } from 'zod';
import type { ConnectorModule } from '../../src/connector-kit/connector-module.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { HubSpotConnector } from './hubspot-connector.ts';
import { startHubSpotSandbox } from './sandbox/hubspot-sandbox.ts';

const envSchema = z.object({
  HUBSPOT_ACCESS_TOKEN: z.string().min(1),
  HUBSPOT_CLIENT_SECRET: z.string().min(1).optional(),
  HUBSPOT_BASE_URL: z.string().url().optional(),
  /** Optional: our app's id, to tell our own writes apart in property history. */
  HUBSPOT_APP_ID: z.string().regex(/^\d+$/).optional(),
  /** Optional: requests per 10 s of the portal's tier (100 Free/Starter, 190 Professional/Enterprise). */
  HUBSPOT_RATE_LIMIT_PER_10S: z.coerce.number().int().min(1).optional(),
  /** Optional: daily request budget of the portal's tier. */
  HUBSPOT_DAILY_LIMIT: z.coerce.number().int().min(1).optional(),
});

const hubspot: ConnectorModule = {
  slug: 'hubspot',
  displayName: 'HubSpot',
  fromEnv(env, options) {
    const present = Object.fromEntries(Object.entries(env).filter(([k, v]) => k.startsWith('HUBSPOT_') && v !== undefined && v !== ''));
    if (!present.HUBSPOT_ACCESS_TOKEN) return null;
    const result = envSchema.safeParse(present);
    if (!result.success) {
      const detail = result.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ');
      throw new CrmhubError('config', `HubSpot settings are invalid: ${detail}`, { code: 'HUBSPOT_BAD_SETTINGS', context: { connector: 'hubspot' } });
    }
    const parsed = result.data;
    return new HubSpotConnector({
      accessToken: parsed.HUBSPOT_ACCESS_TOKEN,
      ...(parsed.HUBSPOT_CLIENT_SECRET ? { clientSecret: parsed.HUBSPOT_CLIENT_SECRET } : {}),
      ...(parsed.HUBSPOT_BASE_URL ? { baseUrl: parsed.HUBSPOT_BASE_URL } : {}),
      ...(parsed.HUBSPOT_APP_ID ? { appId: parsed.HUBSPOT_APP_ID } : {}),
      limits: {
        ...(parsed.HUBSPOT_RATE_LIMIT_PER_10S ? { requestsPerWindow: parsed.HUBSPOT_RATE_LIMIT_PER_10S } : {}),
        ...(parsed.HUBSPOT_DAILY_LIMIT ? { dailyQuota: parsed.HUBSPOT_DAILY_LIMIT } : {}),
      },
      ...(options?.logger ? { logger: options.logger } : {}),
    });
  },
  startSandbox: (options) => startHubSpotSandbox(options),
};

export default hubspot;
export { HubSpotConnector } from './hubspot-connector.ts';
export { startHubSpotSandbox } from './sandbox/hubspot-sandbox.ts';
