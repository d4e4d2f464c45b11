/**
 * The demo's sample people: one deterministic pool, spread over the three CRMs so that most people
 * live in two of them — written the way real CRMs hold the same person: the email's casing differs
 * per CRM, and each CRM has its own phone number for them.
 */

export interface DemoPerson {
  /** Position in the pool. */
  index: number;
  firstName: string;
  lastName: string;
  /** Canonical (lower-case) email; each CRM gets its own spelling of it. */
  email: string;
  plan: 'free' | 'starter' | 'pro' | 'enterprise';
  productUsageScore: number;
  engagementScore: number;
  churnRisk: 'low' | 'medium' | 'high';
  audiences: string[];
}

const FIRST = ['Ada', 'Grace', 'Alan', 'Edsger', 'Barbara', 'Donald', 'Frances', 'John', 'Katherine', 'Linus', 'Margaret', 'Niklaus', 'Radia', 'Tim', 'Ken', 'Dennis', 'Shafi', 'Leslie', 'Sophie', 'Guido'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Dijkstra', 'Liskov', 'Knuth', 'Allen', 'Backus', 'Johnson', 'Torvalds', 'Hamilton', 'Wirth', 'Perlman', 'Berners', 'Thompson', 'Ritchie', 'Goldwasser', 'Lamport', 'Wilson', 'Rossum'];
const DOMAINS = ['example.com', 'example.org', 'example.net'];
const PLANS = ['free', 'starter', 'pro', 'enterprise'] as const;
const RISKS = ['low', 'medium', 'high'] as const;
const AUDIENCES = ['trial_users', 'power_users', 'at_risk', 'newsletter'];

/** `count` people, the same for every run. */
export function demoPeople(count: number): DemoPerson[] {
  const out: DemoPerson[] = [];
  for (let i = 0; i < count; i++) {
    const firstName = FIRST[i % FIRST.length] ?? 'Ada';
    const lastName = LAST[Math.floor(i / FIRST.length) % LAST.length] ?? 'Lovelace';
    const domain = DOMAINS[i % DOMAINS.length] ?? 'example.com';
    const usage = (i * 37) % 100;
    out.push({
      index: i,
      firstName,
      lastName,
      email: `${firstName}.${lastName}.${i}@${domain}`.toLowerCase(),
      plan: PLANS[i % PLANS.length] ?? 'free',
      productUsageScore: usage,
      engagementScore: (i * 53) % 100,
      churnRisk: RISKS[usage < 30 ? 2 : usage < 60 ? 1 : 0] ?? 'low',
      audiences: AUDIENCES.filter((_, a) => (i >> a) % 2 === 1),
    });
  }
  return out;
}

/** How a CRM spells a person's email: HubSpot lower-case, Salesforce capitalised, Pipedrive an upper-case domain. */
export function emailSpelling(slug: string, email: string): string {
  const [local = '', domain = ''] = email.split('@');
  if (slug === 'salesforce') return `${local.split('.').map((p) => p.charAt(0).toUpperCase() + p.slice(1)).join('.')}@${domain.charAt(0).toUpperCase()}${domain.slice(1)}`;
  if (slug === 'pipedrive') return `${local}@${domain.toUpperCase()}`;
  return email;
}

/** Each CRM has its own (conflicting) phone number for a person. */
export function phoneFor(slug: string, index: number): string {
  const line = String(1000 + index).padStart(4, '0');
  if (slug === 'salesforce') return `(415) 555-${line}`;
  if (slug === 'pipedrive') return `+1 628 555 ${line}`;
  return `+1 212 555 ${line}`;
}

/**
 * Which pool members each CRM holds: HubSpot the first two thirds, Salesforce the last two thirds,
 * Pipedrive the middle two thirds — every person is in at least one CRM, most in two or three.
 */
export function membersOf(slug: string, poolSize: number): number[] {
  const third = Math.floor(poolSize / 3);
  const range = (from: number, to: number): number[] => Array.from({ length: Math.max(0, to - from) }, (_, k) => from + k);
  if (slug === 'hubspot') return range(0, 2 * third);
  if (slug === 'salesforce') return range(third, poolSize);
  return range(Math.floor(third / 2), Math.floor(third / 2) + 2 * third);
}

/** A rep's field values for one person in one CRM, in the sandbox's `/_sandbox/edit` shape. */
export function crmFields(slug: string, person: DemoPerson): Record<string, unknown> {
  const email = emailSpelling(slug, person.email);
  const phone = phoneFor(slug, person.index);
  if (slug === 'hubspot') return { email, firstname: person.firstName, lastname: person.lastName, phone };
  if (slug === 'salesforce') return { Email: email, FirstName: person.firstName, LastName: person.lastName, Phone: phone };
  return {
    name: `${person.firstName} ${person.lastName}`,
    emails: [{ value: email, primary: true, label: 'work' }],
    phones: [{ value: phone, primary: true, label: 'work' }],
  };
}

/** The person object of each CRM as mapping files and the sandboxes name it. */
export const PERSON_OBJECT: Record<string, string> = { hubspot: 'contacts', salesforce: 'Contact', pipedrive: 'persons' };
