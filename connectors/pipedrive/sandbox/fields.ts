/**
 * Field definitions of the Pipedrive sandbox, in the shape of API v2 `GET /api/v2/personFields`
 * (fixture `v2.personFields.list.200.json`, spec `openapi-v2.yaml` `getPersonFields`). Custom fields
 * get 40-character hex keys generated per sandbox instance, as a real company account does
 * (crm-reference §3.3), so nothing may hard-code them: clients resolve keys by `field_name`.
 */
import { randomBytes } from 'node:crypto';

export type PipedriveEntity = 'person' | 'organization' | 'deal';
export const ENTITIES: readonly PipedriveEntity[] = ['person', 'organization', 'deal'];

/** The subset of Pipedrive's `field_type` values the sandbox validates and stores. */
export type FieldType = 'varchar' | 'text' | 'double' | 'int' | 'enum' | 'set' | 'date' | 'phone' | 'org' | 'people' | 'user' | 'stage' | 'status' | 'visible_to' | 'monetary';

export interface FieldOption {
  id: number;
  label: string;
}

export interface FieldDefinition {
  field_name: string;
  field_code: string;
  field_type: FieldType;
  options: FieldOption[] | null;
  is_custom_field: boolean;
  description: string | null;
}

/** Standard (non-custom) fields per entity: `field_code` is the v2 attribute name. */
const STANDARD: Record<PipedriveEntity, [code: string, name: string, type: FieldType][]> = {
  person: [
    ['name', 'Name', 'varchar'],
    ['first_name', 'First name', 'varchar'],
    ['last_name', 'Last name', 'varchar'],
    ['emails', 'Email', 'varchar'],
    ['phones', 'Phone', 'phone'],
    ['org_id', 'Organization', 'org'],
    ['owner_id', 'Owner', 'user'],
    ['label_ids', 'Labels', 'set'],
    ['visible_to', 'Visible to', 'visible_to'],
    ['add_time', 'Person created', 'date'],
    ['update_time', 'Update time', 'date'],
  ],
  organization: [
    ['name', 'Name', 'varchar'],
    ['owner_id', 'Owner', 'user'],
    ['website', 'Website', 'varchar'],
    ['industry', 'Industry', 'enum'],
    ['employee_count', 'Number of employees', 'int'],
    ['annual_revenue', 'Annual revenue', 'int'],
    ['label_ids', 'Labels', 'set'],
    ['visible_to', 'Visible to', 'visible_to'],
    ['add_time', 'Organization created', 'date'],
    ['update_time', 'Update time', 'date'],
  ],
  deal: [
    ['title', 'Title', 'varchar'],
    ['value', 'Value', 'monetary'],
    ['currency', 'Currency', 'varchar'],
    ['status', 'Status', 'status'],
    ['stage_id', 'Stage', 'stage'],
    ['pipeline_id', 'Pipeline', 'int'],
    ['owner_id', 'Owner', 'user'],
    ['person_id', 'Contact person', 'people'],
    ['org_id', 'Organization', 'org'],
    ['expected_close_date', 'Expected close date', 'date'],
    ['probability', 'Probability', 'double'],
    ['lost_reason', 'Lost reason', 'varchar'],
    ['label_ids', 'Labels', 'set'],
    ['visible_to', 'Visible to', 'visible_to'],
    ['add_time', 'Deal created', 'date'],
    ['update_time', 'Update time', 'date'],
  ],
};

/** crmhub's own custom fields (notes/custom-fields.md), created in every sandbox account. */
const CRMHUB_CUSTOM: Record<PipedriveEntity, { name: string; type: FieldType; options?: string[] }[]> = {
  person: [
    { name: 'crmhub id', type: 'varchar' },
    { name: 'Plan', type: 'enum', options: ['free', 'starter', 'pro', 'enterprise'] },
    { name: 'Product usage score', type: 'double' },
    { name: 'Engagement score', type: 'double' },
    { name: 'Churn risk', type: 'enum', options: ['low', 'medium', 'high'] },
    { name: 'Audiences', type: 'set', options: ['trial_users', 'power_users', 'at_risk', 'newsletter'] },
  ],
  organization: [
    { name: 'crmhub id', type: 'varchar' },
    { name: 'Plan', type: 'enum', options: ['free', 'starter', 'pro', 'enterprise'] },
    { name: 'Seats', type: 'double' },
  ],
  deal: [{ name: 'crmhub id', type: 'varchar' }],
};

/** A 40-character lowercase hex key, like Pipedrive's custom field hashes. */
export function newFieldKey(): string {
  return randomBytes(20).toString('hex');
}

/** The field catalogue of one sandbox account. */
export class FieldCatalogue {
  readonly fields: Record<PipedriveEntity, FieldDefinition[]> = { person: [], organization: [], deal: [] };
  private nextOptionId = 1;

  constructor() {
    for (const entity of ENTITIES) {
      for (const [code, name, type] of STANDARD[entity]) {
        this.fields[entity].push({ field_name: name, field_code: code, field_type: type, options: null, is_custom_field: false, description: null });
      }
      for (const custom of CRMHUB_CUSTOM[entity]) this.addCustom(entity, custom.name, custom.type, custom.options);
    }
  }

  addCustom(entity: PipedriveEntity, name: string, type: FieldType, options?: string[]): FieldDefinition {
    const def: FieldDefinition = {
      field_name: name,
      field_code: newFieldKey(),
      field_type: type,
      options: options ? options.map((label) => ({ id: this.nextOptionId++, label })) : null,
      is_custom_field: true,
      description: null,
    };
    this.fields[entity].push(def);
    return def;
  }

  custom(entity: PipedriveEntity, key: string): FieldDefinition | undefined {
    return this.fields[entity].find((f) => f.is_custom_field && f.field_code === key);
  }

  customByName(entity: PipedriveEntity, name: string): FieldDefinition | undefined {
    return this.fields[entity].find((f) => f.is_custom_field && f.field_name === name);
  }

  get(entity: PipedriveEntity, code: string): FieldDefinition | undefined {
    return this.fields[entity].find((f) => f.field_code === code);
  }

  rename(entity: PipedriveEntity, key: string, name: string): FieldDefinition | undefined {
    const def = this.custom(entity, key);
    if (def) def.field_name = name;
    return def;
  }

  remove(entity: PipedriveEntity, key: string): boolean {
    const list = this.fields[entity];
    const at = list.findIndex((f) => f.is_custom_field && f.field_code === key);
    if (at < 0) return false;
    list.splice(at, 1);
    return true;
  }

  snapshot(): { fields: Record<PipedriveEntity, FieldDefinition[]>; nextOptionId: number } {
    return { fields: this.fields, nextOptionId: this.nextOptionId };
  }

  restore(state: { fields: Record<PipedriveEntity, FieldDefinition[]>; nextOptionId: number }): void {
    for (const entity of ENTITIES) this.fields[entity] = state.fields[entity];
    this.nextOptionId = state.nextOptionId;
  }
}

/** v2 API view of a field (the response item of `GET /api/v2/personFields`). */
export function renderField(def: FieldDefinition, order: number): Record<string, unknown> {
  return {
    field_name: def.field_name,
    field_code: def.field_code,
    description: def.description,
    field_type: def.field_type,
    options: def.options ? def.options.map((o) => ({ id: o.id, label: o.label })) : null,
    subfields: null,
    is_custom_field: def.is_custom_field,
    is_optional_response_field: false,
    ui_visibility: { add_visible_flag: true, details_visible_flag: true, show_in_add_deal_dialog: { show: false, order } },
    important_fields: { enabled: false, stage_ids: [] },
    required_fields: { enabled: def.field_code === 'name' || def.field_code === 'title' },
  };
}
