/**
 * All migrations, in order. Add a new file and a line here; never edit a migration that
 * has shipped.
 */
import type { Migration } from 'kysely';
import * as m0001 from './0001_initial.js';

export const migrations: Record<string, Migration> = {
  '0001_initial': m0001,
};
