/** JSON values as Python source (True / False / None, lists, dicts, repr-like strings), for generated scripts. */

/** A Python literal for a JSON-like value; floats keep a ".0" when `float` says so. */
export function py(v: unknown, float = false): string {
  if (v === null || v === undefined) return 'None';
  if (v === true) return 'True';
  if (v === false) return 'False';
  if (typeof v === 'number') {
    if (!Number.isFinite(v)) return Number.isNaN(v) ? 'float("nan")' : v > 0 ? 'float("inf")' : '-float("inf")';
    return float && Number.isInteger(v) ? `${v}.0` : String(v);
  }
  if (typeof v === 'string') return JSON.stringify(v); // a JSON string is a valid Python string literal
  if (Array.isArray(v)) return `[${v.map((x) => py(x)).join(', ')}]`;
  if (typeof v === 'object') return `{${Object.entries(v as Record<string, unknown>).map(([k, x]) => `${JSON.stringify(k)}: ${py(x)}`).join(', ')}}`;
  throw new TypeError(`no Python literal for ${typeof v}`);
}

/** `name=value` lines of a call, indented. */
export function kwargs(entries: [string, unknown][], indent = '        ', floats: ReadonlySet<string> = new Set()): string {
  return entries.map(([k, v]) => `${indent}${k}=${py(v, floats.has(k))},`).join('\n');
}
