/** One versioned schema change, written once per dialect (the SQL differs in types only). */
export interface Migration {
  /** Strictly increasing; recorded in `schema_migrations.version`. */
  version: number;
  name: string;
  /** Statements run in order inside one transaction. */
  sqlite: readonly string[];
  postgres: readonly string[];
}
