import { hubE2E } from './hub-e2e-suite.ts';

hubE2E({
  slug: 'pipedrive',
  fields: { email: 'email', lastName: 'last_name', phone: 'phone', plan: 'Plan', engagement: 'Engagement score' },
  // Pipedrive authenticates webhooks with HTTP Basic: a wrong password is refused.
  lastNameEdit: (p, lastName) => ({ name: `${p.firstName} ${lastName}` }),
  deleteWebhook: true,
  tamper: () => ({ headers: { authorization: `Basic ${Buffer.from('crmhub:wrong-password').toString('base64')}` } }),
});
