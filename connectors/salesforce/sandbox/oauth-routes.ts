/**
 * OAuth 2.0 token endpoint (`POST /services/oauth2/token`, form-encoded) for the client
 * credentials and refresh token flows, plus the identity URL and revoke. Responses carry the
 * sandbox's own `instance_url` and an `id` of `…/id/<orgId>/<userId>`, which jsforce parses
 * (lib/connection.js `parseIdUrl`) and re-bases on. Errors are `{error, error_description}` with
 * HTTP 400 (Salesforce Help "OAuth 2.0 Client Credentials Flow", "OAuth 2.0 Refresh Token Flow").
 */
/* eslint-disable @typescript-eslint/require-await -- Fastify handlers are async on purpose: return values are sent and throws become rejections for the error handler. */
import { createHmac } from 'node:crypto';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { z } from 'zod';
import type { SalesforceSandbox } from './salesforce-sandbox.ts';

const tokenForm = z
  .object({
    grant_type: z.string().optional(),
    client_id: z.string().optional(),
    client_secret: z.string().optional(),
    refresh_token: z.string().optional(),
    format: z.string().optional(),
  })
  .passthrough();

function oauthError(reply: FastifyReply, status: number, error: string, description: string): FastifyReply {
  return reply.code(status).header('content-type', 'application/json;charset=UTF-8').send({ error, error_description: description });
}

export function registerOAuthRoutes(app: FastifyInstance, sb: SalesforceSandbox): void {
  const tokenResponse = (scope: string) => {
    const issuedAt = String(sb.now());
    const id = `${sb.baseUrl}/id/${sb.org.orgId}/${sb.org.userId}`;
    const accessToken = sb.issueToken();
    return {
      access_token: accessToken,
      signature: createHmac('sha256', sb.options.clientSecret).update(id + issuedAt).digest('base64'),
      scope,
      instance_url: sb.baseUrl,
      id,
      token_type: 'Bearer',
      issued_at: issuedAt,
    };
  };

  app.post('/services/oauth2/token', async (request, reply) => {
    const parsed = tokenForm.safeParse(request.body ?? {});
    if (!parsed.success) return oauthError(reply, 400, 'invalid_request', 'invalid request body');
    const form = parsed.data;
    switch (form.grant_type) {
      case 'client_credentials':
        if (!sb.checkClient(form.client_id, form.client_secret, true)) return oauthError(reply, 400, 'invalid_client', 'invalid client credentials');
        return tokenResponse('api');
      case 'refresh_token':
        if (!sb.checkClient(form.client_id, form.client_secret, false)) return oauthError(reply, 400, 'invalid_client', 'invalid client credentials');
        if (!form.refresh_token || !sb.checkRefreshToken(form.refresh_token)) return oauthError(reply, 400, 'invalid_grant', 'expired access/refresh token');
        return tokenResponse('refresh_token api');
      case undefined:
        return oauthError(reply, 400, 'unsupported_grant_type', 'grant type not supported');
      default:
        return oauthError(reply, 400, 'unsupported_grant_type', 'grant type not supported');
    }
  });

  app.post('/services/oauth2/revoke', async (_request, reply) => reply.code(200).send());

  const identity = () => ({
    id: `${sb.baseUrl}/id/${sb.org.orgId}/${sb.org.userId}`,
    asserted_user: true,
    user_id: sb.org.userId,
    organization_id: sb.org.orgId,
    username: 'integration@crmhub.sandbox',
    display_name: 'crmhub Integration',
    email: 'integration@crmhub.example.com',
    active: true,
    user_type: 'STANDARD',
    language: 'en_US',
    locale: 'en_US',
    utcOffset: 0,
    urls: {
      rest: `${sb.baseUrl}/services/data/v{version}/`,
      sobjects: `${sb.baseUrl}/services/data/v{version}/sobjects/`,
      query: `${sb.baseUrl}/services/data/v{version}/query/`,
    },
  });
  app.get('/id/:org/:user', async () => identity());
  app.get('/services/oauth2/userinfo', async () => ({ sub: identity().id, user_id: sb.org.userId, organization_id: sb.org.orgId, preferred_username: 'integration@crmhub.sandbox' }));
}
