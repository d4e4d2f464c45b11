import type { FastifyInstance } from 'fastify';
import type { SalesforceSandbox } from './salesforce-sandbox.ts';

export function registerBulk2Routes(_app: FastifyInstance, _sb: SalesforceSandbox): void {}
