/** A row as the driver returns it: column name → value. */
export type SqlRow = Record<string, unknown>;

/** A parameter value both drivers accept. */
export type SqlParam = string | number | null;

/**
 * The little the shared SQL code needs from a connection. SQL is written with `?` placeholders;
 * the Postgres executor rewrites them to `$n` (no statement here contains a literal `?`).
 */
export interface SqlExecutor {
  all(sql: string, params?: readonly SqlParam[]): Promise<SqlRow[]>;
  /** Runs a statement; resolves to the number of rows changed. */
  run(sql: string, params?: readonly SqlParam[]): Promise<number>;
}
