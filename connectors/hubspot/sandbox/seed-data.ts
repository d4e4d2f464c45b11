/**
 * Realistic sample records for `/_sandbox/seed`: people with plausible names, work emails and
 * titles, companies with domains and industries, deals with stages and amounts. Deterministic
 * (a small PRNG seeded per call) so demos and benchmarks see the same data each run.
 */
import type { ObjectName } from './property-catalog.ts';

const FIRST = ['Ada', 'Grace', 'Alan', 'Katherine', 'Linus', 'Margaret', 'Dennis', 'Barbara', 'Ken', 'Frances', 'Edsger', 'Radia', 'Tim', 'Hedy', 'John', 'Joan', 'Donald', 'Sophie', 'Niklaus', 'Anita', 'Guido', 'Karen', 'Bjarne', 'Shafi', 'James', 'Lynn', 'Vint', 'Mary', 'Yukihiro', 'Fei-Fei'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Johnson', 'Torvalds', 'Hamilton', 'Ritchie', 'Liskov', 'Thompson', 'Allen', 'Dijkstra', 'Perlman', 'Berners-Lee', 'Lamarr', 'McCarthy', 'Clarke', 'Knuth', 'Wilson', 'Wirth', 'Borg', 'van Rossum', 'Jones', 'Stroustrup', 'Goldwasser', 'Gosling', 'Conway', 'Cerf', 'Jackson', 'Matsumoto', 'Li'];
const COMPANY_A = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Vandelay', 'Stark', 'Wayne', 'Tyrell', 'Cyberdyne', 'Soylent', 'Wonka', 'Aperture', 'Oscorp', 'Massive'];
const COMPANY_B = ['Labs', 'Industries', 'Systems', 'Analytics', 'Software', 'Logistics', 'Health', 'Foods', 'Robotics', 'Dynamics'];
const INDUSTRIES = ['Computer Software', 'Information Technology and Services', 'Hospital & Health Care', 'Food & Beverages', 'Logistics and Supply Chain', 'Financial Services', 'Retail'];
const TITLES = ['Head of Marketing', 'VP Sales', 'Software Engineer', 'Customer Success Manager', 'CTO', 'Account Executive', 'Product Manager', 'Data Analyst'];
const STAGES = ['appointmentscheduled', 'qualifiedtobuy', 'presentationscheduled', 'decisionmakerboughtin', 'contractsent', 'closedwon', 'closedlost'];
const LIFECYCLE = ['subscriber', 'lead', 'marketingqualifiedlead', 'salesqualifiedlead', 'opportunity', 'customer'];

function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s + 0x6d2b79f5) >>> 0;
    let t = s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const pick = <T>(rand: () => number, list: readonly T[]): T => list[Math.floor(rand() * list.length)] as T;

/** `count` property bags for `object`; `offset` keeps emails/names unique across seed calls. */
export function seedProperties(object: ObjectName, count: number, offset: number): Record<string, string>[] {
  const rand = prng(offset * 7919 + count);
  const out: Record<string, string>[] = [];
  for (let i = 0; i < count; i++) {
    const n = offset + i;
    const company = `${pick(rand, COMPANY_A)} ${pick(rand, COMPANY_B)}`;
    const domain = `${company.toLowerCase().replace(/[^a-z]+/g, '')}${n}.example.com`;
    if (object === 'contacts') {
      const first = pick(rand, FIRST);
      const last = pick(rand, LAST);
      out.push({
        firstname: first,
        lastname: last,
        email: `${first}.${last}.${n}@${domain}`.toLowerCase().replace(/[^a-z0-9@.+-]/g, ''),
        phone: `+1 555 ${String(1000 + (n % 9000)).padStart(4, '0')}`,
        company,
        jobtitle: pick(rand, TITLES),
        lifecyclestage: pick(rand, LIFECYCLE),
      });
    } else if (object === 'companies') {
      out.push({ name: company, domain, industry: pick(rand, INDUSTRIES), numberofemployees: String(5 + Math.floor(rand() * 5000)) });
    } else {
      out.push({
        dealname: `${company} — ${pick(rand, ['Annual plan', 'Expansion', 'Pilot', 'Renewal'])}`,
        dealstage: pick(rand, STAGES),
        pipeline: 'default',
        amount: String(Math.round(rand() * 100) * 500 + 1000),
        closedate: new Date(Date.UTC(2026, Math.floor(rand() * 12), 1 + Math.floor(rand() * 28))).toISOString(),
      });
    }
  }
  return out;
}
