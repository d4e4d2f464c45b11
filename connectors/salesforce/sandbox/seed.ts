/** Realistic-looking records for `POST /_sandbox/seed` (deterministic from the index). */

const FIRST = ['Ada', 'Grace', 'Alan', 'Katherine', 'Linus', 'Margaret', 'Dennis', 'Barbara', 'Ken', 'Frances', 'Tim', 'Radia', 'Edsger', 'Hedy', 'Donald', 'Sophie'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Johnson', 'Torvalds', 'Hamilton', 'Ritchie', 'Liskov', 'Thompson', 'Allen', 'Berners-Lee', 'Perlman', 'Dijkstra', "O'Neil", 'Knuth', 'Wilson'];
const TITLES = ['Engineer', 'VP Sales', 'CTO', 'Marketing Manager', 'Analyst', 'Head of Data', 'Founder', 'Product Manager'];
const COMPANY_A = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Stark', 'Wayne', 'Hooli', 'Vandelay', 'Soylent', 'Tyrell'];
const COMPANY_B = ['Corp', 'Industries', 'Labs', 'Systems', 'GmbH', 'Ltd', 'Group', 'Partners'];
const INDUSTRIES = ['Technology', 'Finance', 'Healthcare', 'Retail', 'Manufacturing', 'Education', 'Media'];
const PLANS = ['free', 'starter', 'pro', 'enterprise'];
const STAGES = ['Prospecting', 'Qualification', 'Needs Analysis', 'Proposal/Price Quote', 'Negotiation/Review', 'Closed Won', 'Closed Lost'];
const SOURCES = ['Web', 'Phone Inquiry', 'Partner Referral', 'Other'];

const pick = <T>(list: readonly T[], n: number): T => list[n % list.length] as T;

function company(i: number): string {
  return `${pick(COMPANY_A, i)} ${pick(COMPANY_B, Math.floor(i / COMPANY_A.length))}${i >= COMPANY_A.length * COMPANY_B.length ? ` ${Math.floor(i / (COMPANY_A.length * COMPANY_B.length)) + 1}` : ''}`;
}

/** Field values for the `i`-th seeded record of an sObject. */
export function seedFields(object: string, i: number, accountId?: string): Record<string, unknown> {
  const first = pick(FIRST, i);
  const last = pick(LAST, Math.floor(i / FIRST.length));
  const email = `${first}.${last}.${i}@example.com`.toLowerCase().replace(/[^a-z0-9.@-]/g, '');
  const phone = `+1 415 555 ${String(1000 + (i % 9000)).padStart(4, '0')}`;
  const person = { FirstName: first, LastName: last, Email: email, Phone: phone, Title: pick(TITLES, i), LeadSource: pick(SOURCES, i) };
  switch (object) {
    case 'Contact':
      return { ...person, Plan__c: pick(PLANS, i), Engagement_Score__c: (i * 7) % 100, ...(accountId ? { AccountId: accountId } : {}) };
    case 'Lead':
      return { ...person, Company: company(i) };
    case 'Account': {
      const name = company(i);
      return {
        Name: name,
        Website: `https://www.${name.toLowerCase().replace(/[^a-z0-9]+/g, '-')}.example.com`,
        Industry: pick(INDUSTRIES, i),
        NumberOfEmployees: 10 + ((i * 37) % 5000),
        Plan__c: pick(PLANS, i),
        Seats__c: 1 + ((i * 13) % 200),
      };
    }
    case 'Opportunity': {
      const close = new Date(Date.UTC(2026, (i % 12), 1 + (i % 28)));
      return {
        Name: `${company(i)} — ${pick(['Renewal', 'Expansion', 'New Business'], i)}`,
        StageName: pick(STAGES, i),
        Amount: 1000 + ((i * 997) % 100_000),
        CloseDate: close.toISOString().slice(0, 10),
        ...(accountId ? { AccountId: accountId } : {}),
      };
    }
    default:
      return {};
  }
}
