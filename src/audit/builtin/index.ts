// Built-in profiles, used as `--profile builtin:NAME` or `extends: builtin:NAME`.
// They are plain data so that a file profile can override any part of them.
import { gatehouseProfile } from './gatehouse.js';

export const builtinProfiles: Record<string, Record<string, unknown>> = {
  gatehouse: gatehouseProfile,
};
