import { describe, expect, it } from 'vitest';
import { jsonNestingExceeds, MAX_JSON_DEPTH } from '../../src/core/json-limits.js';

const nested = (depth: number) => '['.repeat(depth) + ']'.repeat(depth);

describe('jsonNestingExceeds', () => {
  it('accepts exactly the limit and refuses one level more, arrays and objects alike', () => {
    expect(jsonNestingExceeds(nested(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonNestingExceeds(nested(MAX_JSON_DEPTH + 1))).toBe(true);
    const objects = (d: number) => '{"a":'.repeat(d - 1) + '{}' + '}'.repeat(d - 1);
    expect(jsonNestingExceeds(objects(MAX_JSON_DEPTH))).toBe(false);
    expect(jsonNestingExceeds(objects(MAX_JSON_DEPTH + 1))).toBe(true);
  });

  it('does not count brackets inside strings, including after escaped quotes and backslashes', () => {
    const inString = JSON.stringify({ s: '['.repeat(1000) + '\\"[[[' + '{'.repeat(1000) });
    expect(jsonNestingExceeds(inString)).toBe(false);
    // A string ending in a backslash must not swallow the closing quote.
    expect(jsonNestingExceeds(JSON.stringify(['\\']) + nested(MAX_JSON_DEPTH + 1))).toBe(true);
  });

  it('measures depth, not total brackets: many shallow siblings are fine', () => {
    expect(jsonNestingExceeds(`[${Array.from({ length: 5000 }, () => '[{}]').join(',')}]`)).toBe(false);
  });

  it('handles a million levels without recursion', () => {
    expect(jsonNestingExceeds(nested(1_000_000))).toBe(true);
  });
});
