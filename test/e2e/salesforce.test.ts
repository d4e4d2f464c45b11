import { hubE2E } from './hub-e2e-suite.ts';

hubE2E({
  slug: 'salesforce',
  fields: { email: 'Email', lastName: 'LastName', phone: 'Phone', plan: 'Plan__c', engagement: 'Engagement_Score__c' },
  // Outbound Messages carry the shared token in the URL: a wrong token is refused.
  lastNameEdit: (_, lastName) => ({ LastName: lastName }),
  deleteWebhook: false,
  tamper: (d) => ({ url: d.url.replace(/token=[^&]*/, 'token=wrong-token') }),
});
