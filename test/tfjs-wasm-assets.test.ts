import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

/** The worker loads tfjs-backend-wasm's binaries from public/tfjs-wasm/; they must match the installed package. */
describe('public/tfjs-wasm', () => {
  for (const f of ['tfjs-backend-wasm.wasm', 'tfjs-backend-wasm-simd.wasm', 'tfjs-backend-wasm-threaded-simd.wasm']) {
    it(`${f} is the installed version (re-copy from node_modules after upgrading)`, () => {
      const shipped = readFileSync(`public/tfjs-wasm/${f}`);
      const installed = readFileSync(`node_modules/@tensorflow/tfjs-backend-wasm/dist/${f}`);
      expect(shipped.equals(installed)).toBe(true);
    });
  }
});
