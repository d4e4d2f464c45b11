import { hubE2E } from './hub-e2e-suite.ts';

hubE2E({
  slug: 'hubspot',
  fields: { email: 'email', lastName: 'lastname', phone: 'phone', plan: 'crmhub_plan', engagement: 'crmhub_engagement_score' },
  // One byte of the signed body changed: the v3 signature no longer matches.
  lastNameEdit: (_, lastName) => ({ lastname: lastName }),
  deleteWebhook: true,
  tamper: (d) => ({ body: Buffer.from(d.body.toString('utf8').replace(/"objectId":(\d)/, '"objectId":9$1')) }),
});
