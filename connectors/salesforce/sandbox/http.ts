/**
 * HTTP plumbing shared by the Salesforce routes: body parsers (JSON with Salesforce's
 * `JSON_PARSER_ERROR`, form-encoded for OAuth, CSV for Bulk API 2.0), the session check that
 * answers 401 `INVALID_SESSION_ID`, the API allocation with its `Sforce-Limit-Info` header, and
 * the REST error body `[{message, errorCode, fields}]` (REST API Developer Guide, "Status Codes
 * and Error Responses").
 */
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import { SfRequestError, type WriteContext } from './org.ts';
import type { SalesforceSandbox } from './salesforce-sandbox.ts';

export interface SfErrorBody {
  message: string;
  errorCode: string;
  fields?: string[];
}

export function sendSfErrors(reply: FastifyReply, status: number, errors: SfErrorBody[]): FastifyReply {
  return reply.code(status).header('content-type', 'application/json;charset=UTF-8').send(errors);
}

const VERSION = /^v\d{2,3}\.\d$/;

/** True for `/services/data/vNN.N/...` (the metered, authenticated REST surface). */
export function isApiUrl(url: string): boolean {
  return url.startsWith('/services/data/v') || url.startsWith('/id/') || url.startsWith('/services/oauth2/userinfo');
}

/** Who is writing: the API, with `client=` from `Sforce-Call-Options` (`client=crmhub, defaultNamespace=x`). */
export function apiContext(request: FastifyRequest): WriteContext {
  const header = request.headers['sforce-call-options'];
  const raw = Array.isArray(header) ? header.join(',') : (header ?? '');
  const client = /(?:^|[,\s])client=([^,\s]+)/.exec(raw)?.[1];
  const version = /^\/services\/data\/v(\d+\.\d)/.exec(request.url)?.[1];
  return { source: 'api', ...(client ? { client } : {}), ...(version ? { apiVersion: version } : {}) };
}

export function installHttp(app: FastifyInstance, sb: SalesforceSandbox): void {
  app.removeContentTypeParser('application/json');
  app.addContentTypeParser('application/json', { parseAs: 'string' }, (_request, body, done) => {
    const text = typeof body === 'string' ? body : body.toString('utf8');
    if (text.trim() === '') {
      done(null, undefined);
      return;
    }
    try {
      done(null, JSON.parse(text) as unknown);
    } catch (error) {
      done(new SfRequestError(400, 'JSON_PARSER_ERROR', `Unexpected character in JSON body: ${(error as Error).message}`), undefined);
    }
  });
  app.addContentTypeParser('application/x-www-form-urlencoded', { parseAs: 'string' }, (_request, body, done) => {
    done(null, Object.fromEntries(new URLSearchParams(typeof body === 'string' ? body : body.toString('utf8'))));
  });
  app.addContentTypeParser(['text/csv', 'text/plain', 'text/xml', 'application/xml'], { parseAs: 'string' }, (_request, body, done) => {
    done(null, typeof body === 'string' ? body : body.toString('utf8'));
  });

  app.setErrorHandler((error, _request, reply) => {
    if (error instanceof SfRequestError) {
      return sendSfErrors(reply, error.status, [{ message: error.message, errorCode: error.errorCode, ...(error.fields ? { fields: error.fields } : {}) }]);
    }
    const e = error as { statusCode?: number; message?: string; code?: string };
    if (e.statusCode === 413) return sendSfErrors(reply, 413, [{ message: 'Request body too large', errorCode: 'REQUEST_ENTITY_TOO_LARGE' }]);
    if (e.statusCode !== undefined && e.statusCode >= 400 && e.statusCode < 500) {
      return sendSfErrors(reply, e.statusCode, [{ message: e.message ?? 'bad request', errorCode: e.code === 'FST_ERR_CTP_INVALID_MEDIA_TYPE' ? 'UNSUPPORTED_MEDIA_TYPE' : 'JSON_PARSER_ERROR' }]);
    }
    return sendSfErrors(reply, 500, [{ message: e.message ?? 'internal error', errorCode: 'UNKNOWN_EXCEPTION' }]);
  });

  app.setNotFoundHandler((_request, reply) => sendSfErrors(reply, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]));

  // Session check and allocation, after the frame's fault injection (it registered its hook first).
  app.addHook('preHandler', async (request, reply) => {
    const url = request.url;
    if (!isApiUrl(url)) return undefined;
    const version = /^\/services\/data\/(v[^/?]+)/.exec(url)?.[1];
    if (version !== undefined && !VERSION.test(version)) {
      return sendSfErrors(reply, 404, [{ errorCode: 'NOT_FOUND', message: 'The requested resource does not exist' }]);
    }
    const auth = request.headers.authorization ?? '';
    const token = /^(?:Bearer|OAuth)\s+(.+)$/i.exec(auth)?.[1]?.trim();
    if (!token || !sb.isValidToken(token)) {
      return sendSfErrors(reply, 401, [{ message: 'Session expired or invalid', errorCode: 'INVALID_SESSION_ID' }]);
    }
    try {
      sb.takeApiCall();
    } catch (error) {
      if (error instanceof SfRequestError) return sendSfErrors(reply, error.status, [{ message: error.message, errorCode: error.errorCode }]);
      throw error;
    }
    return undefined;
  });

  // "Sforce-Limit-Info: api-usage=n/m" on every REST response (REST API Developer Guide, "Limit Info Header").
  app.addHook('onSend', async (request, reply, payload) => {
    if (request.url.startsWith('/services/data/v')) reply.header('Sforce-Limit-Info', sb.limitInfoHeader());
    return payload;
  });
}
