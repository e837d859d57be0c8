/**
 * Text files people give the engine (datasets, config.json, tokenizer.json, adapter_config.json), decoded in one
 * place so every path refuses the same things with the same words:
 * - a UTF-16 or UTF-32 file (byte-order mark, or NUL bytes between ASCII characters): "save it as UTF-8";
 * - a binary file (NUL bytes; a ZIP / .xlsx, PDF, image or gzip signature): "looks like a binary file";
 * - bytes that are not UTF-8 (a Windows-1252 / Latin-1 export): the byte, its offset and its line.
 * A UTF-8 byte-order mark is fine and is dropped.
 *
 * decodeText takes bytes (the CLI, the browser when it has them). checkDecodedText takes text that something
 * already decoded leniently (Blob.text(), Response.text(): a UTF-16 BOM then reads as two U+FFFD, invalid bytes
 * as U+FFFD), finds the same problems in it and words them the same way.
 */
import { EngineError, type ErrorCode } from '../errors';

export type Encoding = 'UTF-8' | 'UTF-16 LE' | 'UTF-16 BE' | 'UTF-32 LE' | 'UTF-32 BE';

/** The byte-order mark a file starts with, if any (UTF-32 LE is checked before UTF-16 LE, which it extends). */
export function byteOrderMark(b: Uint8Array): Encoding | null {
  if (b.length >= 4 && b[0] === 0xff && b[1] === 0xfe && b[2] === 0 && b[3] === 0) return 'UTF-32 LE';
  if (b.length >= 4 && b[0] === 0 && b[1] === 0 && b[2] === 0xfe && b[3] === 0xff) return 'UTF-32 BE';
  if (b.length >= 3 && b[0] === 0xef && b[1] === 0xbb && b[2] === 0xbf) return 'UTF-8';
  if (b.length >= 2 && b[0] === 0xff && b[1] === 0xfe) return 'UTF-16 LE';
  if (b.length >= 2 && b[0] === 0xfe && b[1] === 0xff) return 'UTF-16 BE';
  return null;
}

/** Signatures of binary files people pick by mistake instead of their CSV / JSONL / JSON. */
const SIGNATURES: { bytes: number[]; what: string }[] = [
  { bytes: [0x50, 0x4b, 0x03, 0x04], what: 'a ZIP archive (an Excel .xlsx workbook is one: export the sheet as "CSV UTF-8")' },
  { bytes: [0xd0, 0xcf, 0x11, 0xe0], what: 'an old Microsoft Office file (.xls / .doc: export the sheet as "CSV UTF-8")' },
  { bytes: [0x25, 0x50, 0x44, 0x46], what: 'a PDF document' },
  { bytes: [0x89, 0x50, 0x4e, 0x47], what: 'a PNG image' },
  { bytes: [0xff, 0xd8, 0xff], what: 'a JPEG image' },
  { bytes: [0x1f, 0x8b], what: 'gzip-compressed data (decompress it first)' },
];

function signature(b: Uint8Array): string | null {
  const hit = SIGNATURES.find((s) => s.bytes.length <= b.length && s.bytes.every((x, i) => b[i] === x));
  return hit ? hit.what : null;
}

/** UTF-16 without a byte-order mark: ASCII text has a NUL in every other byte. */
function utf16WithoutBom(units: ArrayLike<number>, isNul: (x: number) => boolean): 'UTF-16 LE' | 'UTF-16 BE' | null {
  const n = Math.min(units.length, 512) & ~1;
  if (n < 4) return null;
  let even = 0;
  let odd = 0;
  for (let i = 0; i < n; i++) if (isNul(units[i])) i % 2 ? odd++ : even++;
  const half = n / 2;
  if (odd >= 0.6 * half && even === 0) return 'UTF-16 LE';
  if (even >= 0.6 * half && odd === 0) return 'UTF-16 BE';
  return null;
}

function lineAt(b: Uint8Array, offset: number): number {
  let line = 1;
  for (let i = 0; i < offset; i++) if (b[i] === 10) line++;
  return line;
}

/** Offset of the first byte that is not part of a valid UTF-8 sequence, or -1. */
function firstInvalidUtf8(b: Uint8Array, start: number): number {
  let i = start;
  while (i < b.length) {
    const c = b[i];
    if (c < 0x80) {
      i++;
      continue;
    }
    let need: number;
    let min: number;
    if (c >= 0xc2 && c <= 0xdf) (need = 1), (min = 0x80);
    else if (c >= 0xe0 && c <= 0xef) (need = 2), (min = 0x800);
    else if (c >= 0xf0 && c <= 0xf4) (need = 3), (min = 0x10000);
    else return i;
    let cp = c & (0x3f >> need);
    for (let k = 1; k <= need; k++) {
      const x = b[i + k];
      if (x === undefined || (x & 0xc0) !== 0x80) return i;
      cp = (cp << 6) | (x & 0x3f);
    }
    if (cp < min || cp > 0x10ffff || (cp >= 0xd800 && cp <= 0xdfff)) return i;
    i += need + 1;
  }
  return -1;
}

const hex = (x: number) => `0x${x.toString(16).toUpperCase().padStart(2, '0')}`;

function fail(code: ErrorCode, message: string): never {
  throw new EngineError(code, message);
}

function bomMessage(fileName: string, enc: Encoding): string {
  return `${fileName} is ${enc} text (it starts with a byte-order mark); save it as UTF-8`;
}

function noBomMessage(fileName: string, enc: Encoding): string {
  return `${fileName} looks like ${enc} text without a byte-order mark (every other byte is NUL); save it as UTF-8`;
}

function binaryMessage(fileName: string, nulAt: number, what: string | null): string {
  const where = nulAt >= 0 ? ` (NUL byte at byte ${nulAt})` : '';
  return what
    ? `${fileName} looks like a binary file, not text: it is ${what}${where}`
    : `${fileName} looks like a binary file, not text${where}; check that this is the file you meant and that it is saved as UTF-8 text`;
}

/**
 * Decodes a text file's bytes as UTF-8, refusing UTF-16/32, binary files and invalid UTF-8 with a message that
 * names the file and says what it is. A UTF-8 byte-order mark is dropped. `code` is the error code to throw
 * (BAD_DATA for datasets, BAD_CONFIG for model files, BAD_PEFT_CONFIG for adapter_config.json).
 */
export function decodeText(bytes: Uint8Array | ArrayBuffer, fileName: string, code: ErrorCode = 'BAD_DATA'): string {
  const b = bytes instanceof Uint8Array ? bytes : new Uint8Array(bytes);
  const bom = byteOrderMark(b);
  if (bom && bom !== 'UTF-8') fail(code, bomMessage(fileName, bom));
  const start = bom === 'UTF-8' ? 3 : 0;
  const what = signature(b);
  const nul = b.indexOf(0, start);
  if (what) fail(code, binaryMessage(fileName, nul, what));
  if (nul >= 0) {
    const u16 = utf16WithoutBom(b.subarray(start), (x) => x === 0);
    fail(code, u16 ? noBomMessage(fileName, u16) : binaryMessage(fileName, nul, null));
  }
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(b.subarray(start));
  } catch {
    const at = Math.max(start, firstInvalidUtf8(b, start));
    const controls = countControls(b.subarray(0, 1024));
    if (controls > 8) fail(code, binaryMessage(fileName, -1, null));
    fail(code, `${fileName} is not valid UTF-8 text (byte ${hex(b[at] ?? 0)} at byte ${at}, line ${lineAt(b, at)}); it is probably in a legacy encoding such as Windows-1252 or Latin-1: save it as UTF-8`);
  }
}

/** Control bytes other than tab, newline, carriage return, form feed and escape: many of them mean binary. */
function countControls(b: ArrayLike<number>): number {
  let n = 0;
  for (let i = 0; i < b.length; i++) {
    const x = b[i];
    if (x < 0x20 && x !== 9 && x !== 10 && x !== 13 && x !== 12 && x !== 27) n++;
  }
  return n;
}

/** UTF-8 length of text[0, end), counting each U+FFFD as the one invalid byte it most likely replaced. */
function approxByteOffset(text: string, end: number): number {
  let n = 0;
  for (let i = 0; i < end; i++) {
    const c = text.charCodeAt(i);
    if (c === 0xfffd || c < 0x80) n += 1;
    else if (c < 0x800) n += 2;
    else if (c >= 0xd800 && c <= 0xdbff) (n += 4), i++;
    else n += 3;
  }
  return n;
}

/**
 * The same checks as decodeText for text something else already decoded as UTF-8 without failing (File.text(),
 * Response.text()): a UTF-16/32 byte-order mark shows as U+FFFD U+FFFD next to NULs, invalid bytes as U+FFFD.
 * Returns the text without a leading byte-order mark.
 */
export function checkDecodedText(text: string, fileName: string, code: ErrorCode = 'BAD_DATA'): string {
  if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
  const head = text.slice(0, 8);
  const R = '\uFFFD';
  if (head.startsWith(`${R}${R}\0\0`)) fail(code, bomMessage(fileName, 'UTF-32 LE'));
  if (head.startsWith(`\0\0${R}${R}`)) fail(code, bomMessage(fileName, 'UTF-32 BE'));
  if (head.startsWith(`${R}${R}`) && head.includes('\0')) fail(code, bomMessage(fileName, head[2] === '\0' ? 'UTF-16 BE' : 'UTF-16 LE'));
  const nul = text.indexOf('\0');
  if (nul >= 0) {
    const codes = Array.from(text.slice(0, 512), (c) => c.charCodeAt(0));
    const u16 = utf16WithoutBom(codes, (x) => x === 0);
    fail(code, u16 ? noBomMessage(fileName, u16) : binaryMessage(fileName, approxByteOffset(text, nul), null));
  }
  const bad = text.indexOf(R);
  if (bad >= 0) {
    const codes = Array.from(text.slice(0, 1024), (c) => c.charCodeAt(0));
    if (countControls(codes) > 8) fail(code, binaryMessage(fileName, -1, null));
    let line = 1;
    for (let i = 0; i < bad; i++) if (text.charCodeAt(i) === 10) line++;
    fail(code, `${fileName} is not valid UTF-8 text (line ${line} has bytes that are not UTF-8, shown as ${R}); it is probably in a legacy encoding such as Windows-1252 or Latin-1: save it as UTF-8`);
  }
  return text;
}

/** JSON.parse that never throws: the value, or why the text is not JSON (deep nesting included). */
export function tryParseJson(text: string): { ok: true; value: unknown } | { ok: false; reason: string } {
  try {
    return { ok: true, value: JSON.parse(text) };
  } catch (e) {
    if (e instanceof RangeError) return { ok: false, reason: `nested too deeply to read (${e.message})` };
    return { ok: false, reason: e instanceof Error ? e.message : String(e) };
  }
}

/**
 * A JSON file whose top level must be an object: decoded (bytes through decodeText, text through
 * checkDecodedText), parsed and checked; every failure names the file.
 */
export function readJsonObject(content: Uint8Array | ArrayBuffer | string, fileName: string, code: ErrorCode = 'BAD_CONFIG'): Record<string, unknown> {
  const text = typeof content === 'string' ? checkDecodedText(content, fileName, code) : decodeText(content, fileName, code);
  const r = tryParseJson(text);
  if (!r.ok) fail(code, `${fileName}: invalid JSON (${r.reason})`);
  const v = r.value;
  if (v === null || typeof v !== 'object' || Array.isArray(v)) {
    fail(code, `${fileName}: expected a JSON object, found ${v === null ? 'null' : Array.isArray(v) ? 'an array' : `a ${typeof v}`}`);
  }
  return v as Record<string, unknown>;
}
