/**
 * A schema migration as data. Each engine keeps its own ordered list (`sqlite.ts`, later
 * `postgres.ts`) with the same version numbers and names, so both engines describe the same
 * schema at the same version. A migration is applied in one transaction and recorded in
 * `schema_migrations`; it is never edited once released — a change is a new version.
 */
export interface Migration {
  /** 1, 2, 3 … without gaps. */
  readonly version: number;
  /** Short, stable, kebab-case. */
  readonly name: string;
  /** One or more statements, run as a whole inside the migration's transaction. */
  readonly sql: string;
}

/** Throws when a migration list is not numbered 1..n in order (a programming error, found by the tests). */
export function checkMigrations(list: readonly Migration[]): void {
  list.forEach((m, i) => {
    if (m.version !== i + 1) {
      throw new Error(`migration #${i} (${m.name}) has version ${m.version}, expected ${i + 1}`);
    }
    if (!/^[a-z0-9][a-z0-9-]*$/.test(m.name)) {
      throw new Error(`migration ${m.version} has a bad name: ${JSON.stringify(m.name)}`);
    }
  });
}

/** The newest version a list knows. */
export function latestVersion(list: readonly Migration[]): number {
  return list.length === 0 ? 0 : (list[list.length - 1]?.version ?? 0);
}
