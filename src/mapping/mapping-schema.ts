/**
 * The zod schema of mapping files (`mappings/<connector>/<object>.yaml`) — the single source of
 * truth. `mappings/mapping.schema.json` is generated from it (`crmhub mappings schema`), so every
 * `.describe()` here becomes the hover help admins see in their editor. No expressions or code:
 * transforms are a closed list of names (design.md §4, issue 4).
 */
import { z } from 'zod';

export const DIRECTIONS = ['both', 'to_profile', 'to_remote', 'none'] as const;
export type Direction = (typeof DIRECTIONS)[number];

export const CONFLICT_RULES = [
  'latest_wins',
  'prefer_profile',
  'prefer_remote',
  'prefer_profile_unless_empty',
  'prefer_remote_unless_empty',
  'fill_if_empty',
  'review',
] as const;
export type ConflictRule = (typeof CONFLICT_RULES)[number];

export const SIMPLE_TRANSFORMS = [
  'email',
  'phone_e164',
  'trim',
  'lowercase',
  'uppercase',
  'number',
  'integer',
  'boolean',
] as const;
export type SimpleTransform = (typeof SIMPLE_TRANSFORMS)[number];

export const DATE_FORMATS = ['iso_date', 'epoch_ms_date'] as const;
export const DATETIME_FORMATS = ['iso', 'epoch_ms', 'epoch_s'] as const;
export const UNKNOWN_ENUM_RULES = ['pass', 'drop', 'error', 'default'] as const;

const scalar = z.union([z.string(), z.number(), z.boolean(), z.null()]);

const dateTransform = z
  .strictObject({
    date: z
      .enum(DATE_FORMATS)
      .describe(
        'Calendar date without time. Accepts ISO dates/datetimes and epoch milliseconds; outputs `iso_date` (YYYY-MM-DD) or `epoch_ms_date` (midnight UTC in ms, as HubSpot date properties expect).',
      ),
  })
  .describe('Convert to a date-only value in the given format.');

const datetimeTransform = z
  .strictObject({
    datetime: z
      .enum(DATETIME_FORMATS)
      .describe('Output format: `iso` (ISO-8601 UTC), `epoch_ms` (milliseconds), `epoch_s` (seconds).'),
  })
  .describe(
    'Convert to a date-time in the given format. Accepts ISO strings and epoch ms/s numbers or strings.',
  );

const enumTransform = z
  .strictObject({
    enum: z
      .strictObject({
        map: z
          .record(z.string(), scalar)
          .describe(
            'Value map: keys are input values, values are output values. Matching is case-insensitive.',
          ),
        unknown: z
          .enum(UNKNOWN_ENUM_RULES)
          .describe(
            'What to do with a value not in `map`: `pass` it through unchanged, `drop` the field, report an `error` for the record, or use `default`.',
          ),
        default: scalar.optional().describe('Value used when `unknown: default`.'),
      })
      .describe('Enumeration value map with an explicit rule for unknown values.'),
  })
  .describe('Map enumeration values one to one.');

const joinTransform = z
  .strictObject({
    join: z
      .strictObject({ separator: z.string().min(1).describe('Separator placed between values, e.g. `;`.') })
      .describe('Join an array into one string.'),
  })
  .describe(
    'Join a multi-value (array) into a separated string, e.g. HubSpot checkboxes and Salesforce multi-select picklists use `;`.',
  );

const splitTransform = z
  .strictObject({
    split: z
      .strictObject({ separator: z.string().min(1).describe('Separator between values, e.g. `;`.') })
      .describe('Split a string into an array.'),
  })
  .describe('Split a separated string into an array of trimmed, non-empty values.');

const staticTransform = z
  .strictObject({ static: scalar.describe('The constant value.') })
  .describe(
    'Replace the value with a constant (e.g. a lead source). A field whose only source is a static value may omit `profile`.',
  );

export const transformSchema = z
  .union([
    z
      .enum(SIMPLE_TRANSFORMS)
      .describe(
        '`email` trims and lower-cases; `phone_e164` formats as E.164; `trim`; `lowercase`; `uppercase`; `number` parses a decimal; `integer` parses and rounds; `boolean` accepts true/false/yes/no/1/0.',
      ),
    dateTransform,
    datetimeTransform,
    enumTransform,
    joinTransform,
    splitTransform,
    staticTransform,
  ])
  .describe('A named transform. Transforms run in order.');
export type TransformSpec = z.infer<typeof transformSchema>;

const transformList = z.array(transformSchema);

export const fieldSchema = z
  .strictObject({
    profile: z
      .string()
      .regex(/^[A-Za-z_][A-Za-z0-9_]*$/)
      .optional()
      .describe(
        'Profile trait key, e.g. `email`, `plan`, `deal_stage`. Omit only for a field fed by a `static` transform.',
      ),
    remote: z
      .string()
      .min(1)
      .describe(
        'CRM field verbatim: HubSpot property name, Salesforce field API name, Pipedrive field key — or, for Pipedrive custom fields, the field NAME (crmhub resolves its 40-character key).',
      ),
    direction: z
      .enum(DIRECTIONS)
      .optional()
      .describe(
        'Which way values flow: `both`, `to_profile` (CRM → profile), `to_remote` (profile → CRM), `none` (mapped but not synced). Default: `defaults.direction`.',
      ),
    conflict: z
      .enum(CONFLICT_RULES)
      .optional()
      .describe('Who wins when both sides changed since the last sync. Default: `defaults.conflict`.'),
    on_empty: z
      .enum(['ignore', 'clear'])
      .optional()
      .describe(
        '`ignore`: an empty value never blanks the other side; `clear`: empties propagate. Default: `defaults.on_empty`.',
      ),
    transforms: z
      .strictObject({
        to_remote: transformList
          .optional()
          .describe('Applied, in order, to the profile value before it is written to the CRM.'),
        to_profile: transformList
          .optional()
          .describe('Applied, in order, to the CRM value before it is written to the profile.'),
      })
      .optional()
      .describe('Named transforms per direction.'),
    required: z
      .boolean()
      .optional()
      .describe(
        'The CRM needs this field to create a record; records without a value are not created. Default false.',
      ),
  })
  .describe('One mapped field.');
export type FieldSpec = z.infer<typeof fieldSchema>;

export const matchKeySchema = z
  .strictObject({
    remote: z
      .string()
      .min(1)
      .describe(
        'CRM field holding the key; must be unique in the CRM (e.g. `email`, `crmhub_id`, `Crmhub_Id__c`).',
      ),
    identifier: z
      .string()
      .min(1)
      .describe(
        'Profile identifier type whose value is matched, e.g. `email`, `user_id`; `profile_id` matches the crmhub profile id.',
      ),
  })
  .describe('One identity match key.');

export const joinKeySchema = z
  .strictObject({
    remote: z
      .string()
      .min(1)
      .describe('CRM field whose value joins an inbound record to a profile; need not be unique (e.g. `Email`).'),
    identifier: z
      .string()
      .min(1)
      .describe('Profile identifier type the value is looked up as, e.g. `email`.'),
  })
  .describe('One inbound-only join key.');

export const mappingSchema = z
  .strictObject({
    connector: z
      .enum(['hubspot', 'salesforce', 'pipedrive'])
      .describe('Connector slug; must match the folder name.'),
    object: z
      .string()
      .min(1)
      .describe('CRM object verbatim (`contacts`, `Contact`, `persons`); must match the file name.'),
    profile_kind: z
      .enum(['person', 'account'])
      .describe(
        'Kind of profile the records become or attach to (deals attach to a person or account profile).',
      ),
    identity: z
      .strictObject({
        match: z
          .array(matchKeySchema)
          .min(1)
          .describe('Match keys, tried in order; the first that finds records decides.'),
        join: z
          .array(joinKeySchema)
          .optional()
          .describe(
            'Inbound-only join keys: a CRM record coming in joins the profile that holds this identifier, after the match keys. Unlike match keys they need not be unique in the CRM and are never used to find or create records outbound (e.g. Salesforce `Email`). Default: on person mappings, the field mapped to the `email` trait; `[]` joins on the match keys only.',
          ),
        on_no_match: z
          .enum(['create', 'skip'])
          .default('create')
          .describe('When no CRM record matches: `create` one (by native upsert) or `skip`.'),
        on_multiple: z
          .enum(['skip', 'review', 'first'])
          .default('review')
          .describe(
            'When several CRM records match: `skip`, park for `review`, or take the `first` (oldest).',
          ),
      })
      .describe('How a profile finds its CRM record.'),
    defaults: z
      .strictObject({
        direction: z.enum(DIRECTIONS).default('both').describe('Default direction of fields.'),
        conflict: z.enum(CONFLICT_RULES).default('latest_wins').describe('Default conflict rule of fields.'),
        tie_breaker: z
          .enum(['profile', 'remote'])
          .default('profile')
          .describe('Who wins a `latest_wins` tie (equal change times).'),
        on_empty: z.enum(['ignore', 'clear']).default('ignore').describe('Default empty handling of fields.'),
      })
      .prefault({})
      .describe('File-level defaults for fields.'),
    fields: z.array(fieldSchema).min(1).describe('The mapped fields.'),
  })
  .describe('A crmhub field mapping between profile traits and one CRM object.');

export type MappingDoc = z.infer<typeof mappingSchema>;
