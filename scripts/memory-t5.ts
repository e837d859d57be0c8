/**
 * Writes docs/bench/memory-t5.json: the measured wasm heap peak of one LoRA training step of randomly initialised
 * T5 models of two real shapes (t5-small: relu, tied head, 6 + 6 layers; flan-t5-small: gated-gelu, untied, 8 + 8),
 * batch 4 / 8 x length 64 / 128 (source and target), gradient checkpointing on and off, each point in a fresh
 * process (WebAssembly memory only grows). test/memory-estimate.test.ts holds the studio's estimate to them.
 *
 *   npx tsx scripts/memory-t5.ts            about 5 minutes on 2 cores
 */
import { execFileSync } from 'node:child_process';
import { cpus } from 'node:os';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { useNodeBackend } from '../src/engine/io/node-backend';
import { buildModel, countParams } from '../src/engine/models';
import { createPeftModel } from '../src/engine/peft';
import { loraConfig } from '../src/engine/peft/lora/config';
import { collate, type Encoded } from '../src/engine/train/data';
import { AdamW } from '../src/engine/train/optimizer';
import { optimizerStep, peftTrainable } from '../src/engine/train/step';
import { wasmHeapBytes } from '../src/engine/wasm-heap';

const root = fileURLToPath(new URL('..', import.meta.url));

/** The two shapes' config.json fields (transformers' t5-small and google/flan-t5-small). */
const T5_SHAPES: Record<string, Record<string, unknown>> = {
  't5-small': { d_model: 512, d_kv: 64, d_ff: 2048, num_layers: 6, num_decoder_layers: 6, num_heads: 8, feed_forward_proj: 'relu', tie_word_embeddings: true },
  'flan-t5-small': { d_model: 512, d_kv: 64, d_ff: 1024, num_layers: 8, num_decoder_layers: 8, num_heads: 6, feed_forward_proj: 'gated-gelu', tie_word_embeddings: false },
};

function t5Config(shape: string): Record<string, unknown> {
  return {
    architectures: ['T5ForConditionalGeneration'], model_type: 't5', ...T5_SHAPES[shape],
    relative_attention_num_buckets: 32, relative_attention_max_distance: 128, dropout_rate: 0, layer_norm_epsilon: 1e-6,
    initializer_factor: 1, vocab_size: 32128, pad_token_id: 0, eos_token_id: 1, decoder_start_token_id: 0, is_encoder_decoder: true,
  };
}

interface Point { shape: string; batch: number; seq: number; checkpointing: boolean }

async function measure(p: Point) {
  await useNodeBackend('wasm');
  const config = t5Config(p.shape);
  const model = buildModel(config, new Map(), { initMissing: 'all', task: 'SEQ_2_SEQ_LM', seed: 0 });
  const peft = createPeftModel(model, loraConfig({ taskType: 'SEQ_2_SEQ_LM', r: 8, loraAlpha: 16, targetModules: ['q', 'v'] }), 0);
  const tokens = (i: number, k: number) => Array.from({ length: p.seq }, (_, j) => 5 + ((i * k + j * 13) % 32000));
  const rows: Encoded[] = Array.from({ length: p.batch }, (_, i) => ({ ids: tokens(i, 7), labels: tokens(i, 3) }));
  const batch = collate(rows, 'SEQ_2_SEQ_LM', 0);
  const res = await optimizerStep(peftTrainable(peft, { checkpoint: p.checkpointing }), new AdamW({ weightDecay: 0 }), [batch], 1e-3, 1);
  return {
    ...p, config, total_params: countParams(model.modules, model.tied), trainable_params: peft.trainableVariables().reduce((n, v) => n + v.size, 0),
    loss: res.loss, peak_heap_bytes: wasmHeapBytes(),
  };
}

const at = process.argv.indexOf('--point');
if (at > 0) {
  process.stdout.write(JSON.stringify(await measure(JSON.parse(process.argv[at + 1]) as Point)));
} else {
  const points: unknown[] = [];
  for (const shape of Object.keys(T5_SHAPES)) {
    for (const checkpointing of [false, true]) {
      for (const batch of [4, 8]) {
        for (const seq of [64, 128]) {
          const p: Point = { shape, batch, seq, checkpointing };
          process.stderr.write(`memory-t5: ${JSON.stringify(p)}\n`);
          const out = execFileSync('npx', ['tsx', 'scripts/memory-t5.ts', '--point', JSON.stringify(p)], { cwd: root, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
          points.push(JSON.parse(out));
        }
      }
    }
  }
  const doc = {
    about: 'wasm heap peak of one LoRA (r 8, q,v) training step of randomly initialised T5 shapes; source and target both `seq` tokens',
    command: 'npx tsx scripts/memory-t5.ts', node: process.version, cpu: cpus()[0]?.model ?? null, points,
  };
  writeFileSync(join(root, 'docs/bench/memory-t5.json'), `${JSON.stringify(doc, null, 2)}\n`);
  process.stderr.write(`memory-t5: wrote docs/bench/memory-t5.json (${points.length} points)\n`);
}
