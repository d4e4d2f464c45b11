/**
 * Realistic records for `POST /_sandbox/seed`: people with one or two emails and some phones,
 * companies with websites, deals linked to a person and its organization. Deterministic per
 * sequence number so seeded accounts look alike between runs.
 */
import type { PipedriveEntity } from './fields.ts';
import { STAGES, USERS } from './store.ts';

const FIRST = ['Ada', 'Grace', 'Alan', 'Katherine', 'Linus', 'Margaret', 'Tim', 'Barbara', 'Dennis', 'Frances', 'Ken', 'Radia', 'Guido', 'Hedy', 'John', 'Sophie', 'Edsger', 'Joan', 'Niklaus', 'Shafi'];
const LAST = ['Lovelace', 'Hopper', 'Turing', 'Johnson', 'Torvalds', 'Hamilton', 'Berners-Lee', 'Liskov', 'Ritchie', 'Allen', 'Thompson', 'Perlman', 'van Rossum', 'Lamarr', 'McCarthy', 'Wilson', 'Dijkstra', 'Clarke', 'Wirth', 'Goldwasser'];
const COMPANY = ['Acme', 'Globex', 'Initech', 'Umbrella', 'Hooli', 'Vandelay', 'Stark', 'Wayne', 'Tyrell', 'Cyberdyne', 'Soylent', 'Wonka', 'Aperture', 'Massive Dynamic', 'Pied Piper'];
const SUFFIX = ['Corp', 'Industries', 'Labs', 'Systems', 'GmbH', 'Ltd', 'Group'];
const DEAL = ['Annual licence', 'Pilot', 'Expansion', 'Renewal', 'Onboarding package', 'Enterprise upgrade'];

function pick<T>(list: readonly T[], n: number): T {
  const v = list[n % list.length];
  if (v === undefined) throw new TypeError('empty seed list');
  return v;
}

function slug(s: string): string {
  return s.toLowerCase().replace(/[^a-z0-9]+/g, '');
}

export function seedPerson(n: number, orgId: number | null): Record<string, unknown> {
  const first = pick(FIRST, n);
  const last = pick(LAST, Math.floor(n / FIRST.length) + n);
  const domain = `${slug(pick(COMPANY, n))}.example.com`;
  const emails = [{ value: `${slug(first)}.${slug(last)}.${n}@${domain}`, primary: true, label: 'work' }];
  if (n % 3 === 0) emails.push({ value: `${slug(first)}${n}@mail.example.org`, primary: false, label: 'home' });
  const phones = n % 2 === 0 ? [{ value: `+1415555${String(1000 + (n % 9000)).padStart(4, '0')}`, primary: true, label: 'work' }] : [];
  return { name: `${first} ${last}`, emails, phones, org_id: orgId, owner_id: pick(USERS, n).id };
}

export function seedOrganization(n: number): Record<string, unknown> {
  const name = `${pick(COMPANY, n)} ${pick(SUFFIX, Math.floor(n / COMPANY.length))}${n >= COMPANY.length * SUFFIX.length ? ` ${n}` : ''}`;
  return { name, website: `https://${slug(name)}.example.com`, employee_count: 10 + ((n * 37) % 5000), owner_id: pick(USERS, n).id };
}

export function seedDeal(n: number, personId: number | null, orgId: number | null): Record<string, unknown> {
  return {
    title: `${pick(DEAL, n)} #${n}`,
    value: 1000 * (1 + (n % 50)),
    currency: 'USD',
    stage_id: pick(STAGES, n).id,
    person_id: personId,
    org_id: orgId,
    owner_id: pick(USERS, n).id,
    expected_close_date: `2027-0${1 + (n % 9)}-15`,
  };
}

export function entityFromObjectName(object: string): PipedriveEntity | null {
  switch (object) {
    case 'person':
    case 'persons':
      return 'person';
    case 'organization':
    case 'organizations':
      return 'organization';
    case 'deal':
    case 'deals':
      return 'deal';
    default:
      return null;
  }
}
