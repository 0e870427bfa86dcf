/**
 * Structural limits for JSON request bodies, checked on the raw text *before* anything
 * recursive touches it (JSON.stringify, schema validation, library code): a body nested a
 * few thousand levels deep overflows the stack of recursive code. The scan is a single
 * loop over the text with a counter, so it cannot overflow however deep the input goes.
 */

/** Deepest nesting of arrays and objects accepted in a request body (a WebAuthn response needs 4). */
export const MAX_JSON_DEPTH = 32;

/**
 * True when the JSON text nests arrays/objects deeper than `maxDepth`. Brackets inside
 * strings do not count. Malformed text is left to the parser (this only measures depth).
 */
export function jsonNestingExceeds(text: string, maxDepth: number = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c /* \ */)
        i++; // the escaped character cannot end the string
      else if (ch === 0x22 /* " */) inString = false;
    } else if (ch === 0x22) {
      inString = true;
    } else if (ch === 0x7b /* { */ || ch === 0x5b /* [ */) {
      if (++depth > maxDepth) return true;
    } else if (ch === 0x7d /* } */ || ch === 0x5d /* ] */) {
      depth--;
    }
  }
  return false;
}
