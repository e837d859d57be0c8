/**
 * Every PEFT config PEFT Studio understands, read from and written to adapter_config.json exactly as PEFT does,
 * through the method registry (registry.ts).
 */
import { EngineError } from '../errors';
import { checkDecodedText, decodeText, tryParseJson } from '../io/text';
import { methodOf, METHODS, type PeftConfig } from './registry';
import type { AdapterConfigExtras } from './schema';
import { floatNames } from './schema';

export type { LoraConfig } from './lora/config';
export type { PromptTuningConfig } from './prompt-tuning/config';
export type { IA3Config } from './ia3/config';
export type { AdaLoraConfig } from './adalora/config';
export type { PTuningConfig } from './p-tuning/config';
export type { PrefixTuningConfig } from './prefix-tuning/config';
export type { PeftConfig, PeftType } from './registry';
export type { AdapterConfigExtras } from './schema';

function bad(msg: string): never {
  throw new EngineError('BAD_PEFT_CONFIG', msg);
}

/**
 * Parses adapter_config.json (its bytes, its text, or the parsed object) into a typed, validated config. Bytes and
 * text go through the shared text checks (UTF-16, binary, invalid UTF-8, deep nesting); `fileName` names the file.
 */
export function parsePeftConfig(json: unknown, fileName = 'adapter_config.json'): PeftConfig {
  let obj = json;
  if (typeof json === 'string' || json instanceof Uint8Array || json instanceof ArrayBuffer) {
    const text = typeof json === 'string' ? checkDecodedText(json, fileName, 'BAD_PEFT_CONFIG') : decodeText(json, fileName, 'BAD_PEFT_CONFIG');
    const r = tryParseJson(text);
    if (!r.ok) bad(`${fileName} is not valid JSON: ${r.reason}`);
    obj = r.value;
  }
  if (obj === null || typeof obj !== 'object' || Array.isArray(obj)) bad(`${fileName} must contain a JSON object.`);
  const rec = obj as Record<string, unknown>;
  if (rec.peft_type === undefined || rec.peft_type === null) bad(`${fileName} has no peft_type; is this a PEFT adapter?`);
  return methodOf(rec.peft_type).fromJson(rec) as PeftConfig;
}

/** Validates a config of any method (PEFT's messages). */
export function validatePeftConfig(cfg: PeftConfig): PeftConfig {
  return methodOf(cfg.peftType).config(cfg) as PeftConfig;
}

/** adapter_config.json content for a config (keys and values exactly as PEFT 0.15.2 writes them). */
export function peftConfigToJson(cfg: PeftConfig, extras: AdapterConfigExtras): Record<string, unknown> {
  return methodOf(cfg.peftType).toJson(cfg, extras);
}

// ---------------------------------------------------------------------------------------------------------------
// Byte-exact serialisation: json.dumps(d, indent=2, sort_keys=True), ensure_ascii, no trailing newline.

/** Fields PEFT declares as float, written with a ".0" when integral (JS cannot tell 0 from 0.0). */
const FLOAT_KEYS = new Set(METHODS.flatMap((m) => floatNames(m.schema)));

/** Python float repr: shortest round-trip digits, scientific below 1e-4 or from 1e16. */
export function pyFloatRepr(x: number): string {
  if (Number.isNaN(x)) return 'NaN';
  if (!Number.isFinite(x)) return x > 0 ? 'Infinity' : '-Infinity';
  if (x === 0) return Object.is(x, -0) ? '-0.0' : '0.0';
  const [m, e] = Math.abs(x).toExponential().split('e');
  const exp = parseInt(e, 10);
  const digits = m.replace('.', '');
  const sign = x < 0 ? '-' : '';
  if (exp < -4 || exp >= 16) {
    const mant = digits.length > 1 ? `${digits[0]}.${digits.slice(1)}` : digits;
    return `${sign}${mant}e${exp < 0 ? '-' : '+'}${String(Math.abs(exp)).padStart(2, '0')}`;
  }
  if (exp < 0) return `${sign}0.${'0'.repeat(-exp - 1)}${digits}`;
  const int = digits.slice(0, exp + 1).padEnd(exp + 1, '0');
  return `${sign}${int}.${digits.slice(exp + 1) || '0'}`;
}

function dumpStr(s: string): string {
  return JSON.stringify(s).replace(/[\u0080-\uffff]/g, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`);
}

function dump(v: unknown, indent: string, key: string | null): string {
  if (v === null || v === undefined) return 'null';
  if (typeof v === 'boolean') return v ? 'true' : 'false';
  if (typeof v === 'number') return key !== null && FLOAT_KEYS.has(key) ? pyFloatRepr(v) : Number.isFinite(v) ? String(v) : pyFloatRepr(v);
  if (typeof v === 'string') return dumpStr(v);
  const inner = `${indent}  `;
  if (Array.isArray(v)) {
    if (!v.length) return '[]';
    return `[\n${v.map((x) => inner + dump(x, inner, key)).join(',\n')}\n${indent}]`;
  }
  const keys = Object.keys(v as object).sort();
  if (!keys.length) return '{}';
  const rec = v as Record<string, unknown>;
  return `{\n${keys.map((k) => `${inner}${dumpStr(k)}: ${dump(rec[k], inner, k)}`).join(',\n')}\n${indent}}`;
}

/** adapter_config.json text byte-identical to PEFT's save_pretrained output. */
export function formatAdapterConfigJson(obj: Record<string, unknown>): string {
  return dump(obj, '', null);
}
