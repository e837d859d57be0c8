/**
 * Quoting values from people's files in error messages. A config.json or safetensors header can hold anything,
 * including a value nested 10000 levels deep (JSON.stringify of it overflows the stack) or a megabyte-long string,
 * so every value a message quotes goes through quoteValue: compact JSON, cut at `maxChars`, and never recursing
 * deeper than the characters it may still write.
 */

/** Compact JSON-like text of `v`, at most about `maxChars` characters ("…" marks a cut). Never throws. */
export function quoteValue(v: unknown, maxChars = 80): string {
  const out: string[] = [];
  let left = Math.max(8, maxChars);
  let cut = false;
  const put = (s: string): boolean => {
    if (cut) return false;
    if (s.length > left) {
      out.push(s.slice(0, Math.max(0, left)));
      left = 0;
      cut = true;
      return false;
    }
    out.push(s);
    left -= s.length;
    return true;
  };
  const seen = new Set<object>();
  // Each level writes at least one character, so the recursion is never deeper than maxChars.
  const write = (x: unknown): void => {
    if (cut) return;
    if (x === null) return void put('null');
    switch (typeof x) {
      case 'string': {
        if (x.length > left) {
          // Up to `left` characters of the string itself, then the cut mark.
          out.push(JSON.stringify(x.slice(0, left)).slice(0, -1));
          cut = true;
          return;
        }
        return void put(JSON.stringify(x));
      }
      case 'number':
        return void put(String(x)); // NaN and Infinity as JS writes them
      case 'boolean':
        return void put(String(x));
      case 'undefined':
        return void put('undefined');
      case 'bigint':
        return void put(`${x}n`);
      case 'function':
      case 'symbol':
        return void put(`[${typeof x}]`);
      default:
        break;
    }
    const o = x as object;
    if (seen.has(o)) return void put('[circular]');
    seen.add(o);
    if (Array.isArray(o) || ArrayBuffer.isView(o)) {
      const arr = o as ArrayLike<unknown>;
      if (!put('[')) return;
      for (let i = 0; i < arr.length && !cut; i++) {
        if (i > 0 && !put(', ')) break;
        write(arr[i]);
      }
      put(']');
    } else {
      if (!put('{')) return;
      let first = true;
      for (const k in o) {
        if (!Object.prototype.hasOwnProperty.call(o, k)) continue;
        if (!first && !put(', ')) break;
        first = false;
        if (!put(`${JSON.stringify(k.length > left ? k.slice(0, left) : k)}: `)) break;
        write((o as Record<string, unknown>)[k]);
        if (cut) break;
      }
      put('}');
    }
    seen.delete(o);
  };
  write(v);
  return cut ? `${out.join('')}…` : out.join('');
}

/** The JSON type of a value, with its article: "a string", "a number", "an array", "null", ... */
export function jsonType(v: unknown): string {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'an array';
  switch (typeof v) {
    case 'string': return 'a string';
    case 'number': return 'a number';
    case 'boolean': return 'a boolean';
    case 'undefined': return 'nothing';
    case 'object': return 'an object';
    default: return `a ${typeof v}`;
  }
}

/**
 * A value with its JSON type, for "must be a number, got the string "8"": `the string "8"`, `the number 8.5`,
 * `true`, `null`, `an array [1, 2]`, `an object {"a": 1}`. Bounded like quoteValue.
 */
export function describeValue(v: unknown, maxChars = 80): string {
  if (v === null || v === undefined || typeof v === 'boolean') return String(v);
  if (typeof v === 'string') return `the string ${quoteValue(v, maxChars)}`;
  if (typeof v === 'number') return `the number ${quoteValue(v, maxChars)}`;
  return `${jsonType(v)} ${quoteValue(v, maxChars)}`;
}

/** A list of names for a message: each cut at 40 characters, at most `max` of them, then "and N more". */
export function listNames(items: readonly string[], max = 12): string {
  const cut = (s: string) => (s.length > 40 ? `${s.slice(0, 40)}…` : s);
  const shown = items.slice(0, max).map(cut).join(', ');
  return items.length > max ? `${shown} and ${items.length - max} more` : shown;
}
