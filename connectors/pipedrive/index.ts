/**
 * The Pipedrive connector module (design.md §2): builds the connector from the environment and
 * starts its sandbox. Only the composition root imports this.
 */
import { z } from 'zod';
import type { ConnectorModule } from '../../src/connector-kit/connector-module.ts';
import { CrmhubError } from '../../src/connector-kit/errors.ts';
import { PipedriveConnector } from './pipedrive-connector.ts';
import { startPipedriveSandbox } from './sandbox/index.ts';

const envSchema = z.object({
  PIPEDRIVE_API_TOKEN: z.string().min(1),
  /** Host root, e.g. `https://acme.pipedrive.com`; default Pipedrive's API host. */
  PIPEDRIVE_BASE_URL: z.string().url().default('https://api.pipedrive.com'),
  PIPEDRIVE_WEBHOOK_USER: z.string().min(1).optional(),
  PIPEDRIVE_WEBHOOK_PASSWORD: z.string().min(1).optional(),
});

const pipedrive: ConnectorModule = {
  slug: 'pipedrive',
  displayName: 'Pipedrive',
  fromEnv(env, options = {}) {
    if (!env['PIPEDRIVE_API_TOKEN']) return null;
    const parsed = envSchema.safeParse({
      PIPEDRIVE_API_TOKEN: env['PIPEDRIVE_API_TOKEN'],
      PIPEDRIVE_BASE_URL: env['PIPEDRIVE_BASE_URL'] || undefined,
      PIPEDRIVE_WEBHOOK_USER: env['PIPEDRIVE_WEBHOOK_USER'] || undefined,
      PIPEDRIVE_WEBHOOK_PASSWORD: env['PIPEDRIVE_WEBHOOK_PASSWORD'] || undefined,
    });
    if (!parsed.success) {
      // Name the variable, never echo its value (it may be a secret).
      const names = parsed.error.issues.map((i) => i.path.join('.')).join(', ');
      throw new CrmhubError('config', `Pipedrive settings invalid: ${names}`, { code: 'PIPEDRIVE_BAD_ENV', context: { connector: 'pipedrive' } });
    }
    const e = parsed.data;
    return new PipedriveConnector({
      baseUrl: e.PIPEDRIVE_BASE_URL,
      apiToken: e.PIPEDRIVE_API_TOKEN,
      ...(e.PIPEDRIVE_WEBHOOK_USER ? { webhookUser: e.PIPEDRIVE_WEBHOOK_USER } : {}),
      ...(e.PIPEDRIVE_WEBHOOK_PASSWORD ? { webhookPassword: e.PIPEDRIVE_WEBHOOK_PASSWORD } : {}),
      ...(options.logger ? { logger: options.logger } : {}),
    });
  },
  startSandbox: (options) => startPipedriveSandbox(options),
};

export default pipedrive;
