import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vite';
import react from '@vitejs/plugin-react';

// COOP/COEP make the page cross-origin isolated, which tfjs-backend-wasm needs for its threaded build.
const isolation = {
  'Cross-Origin-Opener-Policy': 'same-origin',
  'Cross-Origin-Embedder-Policy': 'require-corp',
};

export default defineConfig({
  plugins: [react()],
  server: { headers: isolation },
  preview: { headers: isolation },
  worker: {
    format: 'es',
    // tfjs-backend-wasm starts its threads from `factory.toString()`; mangling or compressing renames the
    // factory's free variables (_scriptDir) and every pthread dies with a ReferenceError. Whitespace-only here.
    rolldownOptions: { output: { minify: { mangle: false, compress: false } } },
  },
  // Pre-bundle the wasm backend: served raw, its CommonJS emscripten glue (wasm-out/*.js) has no ES exports and
  // the dev server fails to load it. The .wasm binaries are served from public/tfjs-wasm/ (see src/worker).
  optimizeDeps: { include: ['@tensorflow/tfjs-backend-wasm'] },
  build: {
    target: 'es2022',
    chunkSizeWarningLimit: 8000,
    // Two pages: the studio, and bench.html (npm run bench:browser drives the studio's worker from it).
    rolldownOptions: {
      input: { main: fileURLToPath(new URL('index.html', import.meta.url)), bench: fileURLToPath(new URL('bench.html', import.meta.url)) },
    },
  },
});
