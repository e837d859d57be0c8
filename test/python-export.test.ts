/**
 * The exported Python project: train.py compiles, its PeftConfig and TrainingArguments calls hold every studio
 * setting under PEFT's and Trainer's names (PEFT's names as PEFT itself writes them in the fixtures'
 * adapter_config.json), the accelerate / DeepSpeed / FSDP configs are YAML of accelerate's shape, the data is
 * copied byte for byte, and --resume-adapter starts from a downloaded adapter.
 */
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { main } from '../src/cli/main';
import { pythonProject } from '../src/engine/export/python-project';
import { methodOf } from '../src/engine/peft/registry';
import { DEFAULT_ARGS } from '../src/engine/session';
import { RUN_DEFAULTS } from '../src/engine/train/defaults';
import { FIX } from './helpers';

const tmp = mkdtempSync(join(tmpdir(), 'pyexport-test-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** The keyword arguments of every call to the named functions, and the module's constants, read with Python's ast. */
const READER = `
import ast, json, sys
tree = ast.parse(open(sys.argv[1]).read())
names = set(sys.argv[2].split(","))
calls, consts = {}, {}
def lit(v):
    if isinstance(v, ast.Dict):
        return {ast.literal_eval(k): lit(x) for k, x in zip(v.keys, v.values)}
    try:
        return ast.literal_eval(v)
    except Exception:
        return {"expr": ast.unparse(v)}
for node in ast.walk(tree):
    if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and node.func.id in names:
        calls[node.func.id] = {k.arg: lit(k.value) for k in node.keywords}
for node in tree.body:
    if isinstance(node, ast.Assign) and len(node.targets) == 1 and isinstance(node.targets[0], ast.Name):
        consts[node.targets[0].id] = lit(node.value)
print(json.dumps({"calls": calls, "consts": consts}))
`;

function readPy(path: string, calls: string[]): { calls: Record<string, Record<string, unknown>>; consts: Record<string, unknown> } {
  execFileSync('python3', ['-m', 'py_compile', path]);
  return JSON.parse(execFileSync('python3', ['-c', READER, path, calls.join(',')], { encoding: 'utf8' }));
}

function readYaml(path: string): Record<string, unknown> {
  return JSON.parse(execFileSync('python3', ['-c', 'import json, sys, yaml; print(json.dumps(yaml.safe_load(open(sys.argv[1]))))', path], { encoding: 'utf8' }));
}

/** PEFT's own field names per method, from adapter_config.json files PEFT 0.15.2 wrote. */
function peftFields(fixture: string): Set<string> {
  return new Set(Object.keys(JSON.parse(readFileSync(join(FIX, 'adapters', fixture, 'adapter_config.json'), 'utf8'))));
}

const GPT2 = join('public', 'models', 'sotu-gpt2');
const LM_DATA = join('public', 'datasets', 'sotu-fdr', 'train.jsonl');

async function exportProject(name: string, flags: string[]): Promise<string> {
  const out = join(tmp, name);
  expect(await main(['export-python', ...flags, '--out', out])).toBe(0);
  return out;
}

describe('export-python', () => {
  it('LoRA (rsLoRA, DoRA, patterns, LoRA+): every setting in train.py under PEFT\'s and Trainer\'s names', async () => {
    const out = await exportProject('lora', [
      '--model', GPT2, '--data', LM_DATA, '--task', 'causal_lm', '--method', 'lora', '--r', '16', '--lora-alpha', '32',
      '--lora-dropout', '0.05', '--target-modules', 'c_attn,c_proj', '--use-rslora', '--use-dora', '--rank-pattern', '{"c_proj": 4}',
      '--alpha-pattern', '{"c_attn": 8}', '--lr', '3e-4', '--steps', '120', '--batch-size', '4', '--grad-accum', '2', '--warmup-steps', '10',
      '--scheduler', 'cosine', '--weight-decay', '0.01', '--max-grad-norm', '0.5', '--eval-steps', '20', '--save-steps', '40',
      '--save-total-limit', '2', '--validation-split', '0.1', '--seed', '7', '--max-length', '96', '--gradient-checkpointing',
      '--loraplus-lr-ratio', '16', '--load-best-model-at-end', '--base-model-name', 'openai-community/gpt2',
    ]);
    const { calls, consts } = readPy(join(out, 'train.py'), ['LoraConfig', 'TrainingArguments', 'create_loraplus_optimizer', 'EarlyStoppingCallback']);
    const lora = calls.LoraConfig;
    const fields = peftFields('gpt2-lora');
    for (const k of Object.keys(lora)) expect(fields.has(k) || k === 'task_type', k).toBe(true);
    expect(lora).toMatchObject({
      r: 16, lora_alpha: 32, lora_dropout: 0.05, target_modules: ['c_attn', 'c_proj'], use_rslora: true, use_dora: true,
      rank_pattern: { c_proj: 4 }, alpha_pattern: { c_attn: 8 }, bias: 'none', task_type: { expr: 'TaskType.CAUSAL_LM' },
    });
    expect(calls.TrainingArguments).toMatchObject({
      learning_rate: 3e-4, max_steps: 120, per_device_train_batch_size: 4, gradient_accumulation_steps: 2, warmup_steps: 10,
      lr_scheduler_type: 'cosine', weight_decay: 0.01, max_grad_norm: 0.5, eval_strategy: 'steps', eval_steps: 20,
      save_strategy: 'steps', save_steps: 40, save_total_limit: 2, seed: 7, gradient_checkpointing: true,
      load_best_model_at_end: true, metric_for_best_model: 'eval_loss', optim: 'adamw_torch', report_to: 'none',
    });
    expect(calls.TrainingArguments).not.toHaveProperty('num_train_epochs');
    expect(calls.create_loraplus_optimizer).toMatchObject({ loraplus_lr_ratio: { expr: 'LORAPLUS_LR_RATIO' } });
    expect(consts).toMatchObject({ MODEL: 'openai-community/gpt2', TASK: 'CAUSAL_LM', MAX_LENGTH: 96, LORAPLUS_LR_RATIO: 16 });
    expect((consts.DATA as Record<string, unknown>).validation_split).toBe(0.1);
    expect(readFileSync(join(out, 'data', 'train.jsonl'))).toEqual(readFileSync(LM_DATA));
    const train = readFileSync(join(out, 'train.py'), 'utf8');
    expect(train).toContain('"--resume-adapter"');
    expect(train).toContain('PeftModel.from_pretrained(model, cli.resume_adapter, is_trainable=True)');
  });

  it('requirements, accelerate configs (multi-GPU, DeepSpeed ZeRO-2, FSDP) and the README\'s accelerate launch', async () => {
    const out = await exportProject('configs', ['--model', GPT2, '--data', LM_DATA, '--task', 'causal_lm', '--grad-accum', '4', '--max-grad-norm', '0.3']);
    const req = readFileSync(join(out, 'requirements.txt'), 'utf8');
    for (const pin of ['transformers==4.43.4', 'peft==0.15.2', 'accelerate==', 'datasets==', 'torch']) expect(req).toContain(pin);
    const ddp = readYaml(join(out, 'accelerate', 'multi_gpu.yaml'));
    expect(ddp).toMatchObject({ distributed_type: 'MULTI_GPU', num_machines: 1, compute_environment: 'LOCAL_MACHINE' });
    expect(typeof ddp.num_processes).toBe('number');
    const ds = readYaml(join(out, 'accelerate', 'deepspeed_zero2.yaml'));
    expect(ds).toMatchObject({ distributed_type: 'DEEPSPEED', deepspeed_config: { zero_stage: 2, gradient_accumulation_steps: 4, gradient_clipping: 0.3 } });
    const fsdp = readYaml(join(out, 'accelerate', 'fsdp.yaml'));
    expect(fsdp).toMatchObject({ distributed_type: 'FSDP', fsdp_config: { fsdp_sharding_strategy: 'FULL_SHARD', fsdp_transformer_layer_cls_to_wrap: 'GPT2Block', fsdp_auto_wrap_policy: 'TRANSFORMER_BASED_WRAP' } });
    const readme = readFileSync(join(out, 'README.md'), 'utf8');
    expect(readme).toContain('accelerate launch --config_file accelerate/multi_gpu.yaml train.py');
    expect(readme).toContain('--resume-adapter');
    const { calls } = readPy(join(out, 'train.py'), ['TrainingArguments']);
    // Flags left out take the shared run defaults, as `train` does: steps, warm-up, evaluation on a held-out tenth.
    expect(calls.TrainingArguments).toMatchObject({
      max_steps: RUN_DEFAULTS.maxSteps, warmup_steps: RUN_DEFAULTS.warmupSteps, eval_strategy: 'steps', eval_steps: RUN_DEFAULTS.evalSteps,
      per_device_train_batch_size: RUN_DEFAULTS.batchSize,
    });
  });

  it.each([
    { method: 'ia3', cls: 'IA3Config', fixture: 'gpt2-ia3', flags: ['--target-modules', 'c_attn,mlp.c_proj', '--feedforward-modules', 'mlp.c_proj'], want: { target_modules: ['c_attn', 'mlp.c_proj'], feedforward_modules: ['mlp.c_proj'] } },
    { method: 'adalora', cls: 'AdaLoraConfig', fixture: 'gpt2-adalora', flags: ['--init-r', '12', '--target-r', '4', '--target-modules', 'c_attn', '--tinit', '5', '--tfinal', '10', '--deltaT', '2'], want: { init_r: 12, target_r: 4, tinit: 5, tfinal: 10, deltaT: 2, total_step: 50 } },
    { method: 'prompt_tuning', cls: 'PromptTuningConfig', fixture: 'gpt2-prompt', flags: ['--num-virtual-tokens', '12'], want: { num_virtual_tokens: 12, prompt_tuning_init: 'RANDOM' } },
    { method: 'p_tuning', cls: 'PromptEncoderConfig', fixture: 'gpt2-ptuning-lstm', flags: ['--num-virtual-tokens', '6', '--encoder-reparameterization-type', 'LSTM', '--encoder-hidden-size', '32'], want: { num_virtual_tokens: 6, encoder_reparameterization_type: 'LSTM', encoder_hidden_size: 32 } },
    { method: 'prefix_tuning', cls: 'PrefixTuningConfig', fixture: 'gpt2-prefix-proj', flags: ['--num-virtual-tokens', '10', '--prefix-projection'], want: { num_virtual_tokens: 10, prefix_projection: true } },
  ])('$method: $cls with PEFT\'s field names and the flags\' values', async ({ method, cls, fixture, flags, want }) => {
    const out = await exportProject(method, ['--model', GPT2, '--data', LM_DATA, '--task', 'causal_lm', '--method', method, '--steps', '50', ...flags]);
    const { calls } = readPy(join(out, 'train.py'), [cls, 'TrainingArguments', 'AdaLoraStep']);
    const fields = peftFields(fixture);
    for (const k of Object.keys(calls[cls])) expect(fields.has(k) || k === 'task_type', `${cls}.${k}`).toBe(true);
    expect(calls[cls]).toMatchObject(want);
    const train = readFileSync(join(out, 'train.py'), 'utf8');
    // AdaLoRA needs update_and_allocate after every optimizer step, which Trainer does not call by itself.
    expect(train.includes('callbacks.append(AdaLoraStep())')).toBe(method === 'adalora');
    // PEFT will not load a prompt-learning adapter as trainable: prompt tuning's tensor is put into a fresh model,
    // and the encoder methods (whose file holds only the encoder's output) say why they cannot resume.
    if (method === 'prompt_tuning') expect(train).toContain('set_peft_model_state_dict(model, load_file(');
    if (method === 'p_tuning' || method === 'prefix_tuning') expect(train).toMatch(/sys\.exit\("--resume-adapter: a .* adapter holds only the encoder's output/);
  });

  it('SEQ_CLS CSV: label names in the studio\'s order, columns, a validation file, early stopping', async () => {
    const dir = join(tmp, 'csv');
    execFileSync('mkdir', ['-p', dir]);
    writeFileSync(join(dir, 'mail.csv'), 'body,kind\nhello there,spam\nhi,ham\nbuy now,spam\nlunch?,ham\n');
    writeFileSync(join(dir, 'held.csv'), 'body,kind\nfree money,spam\nsee you,ham\n');
    const out = await exportProject('seqcls', [
      '--model', join(FIX, 'models', 'gpt2-tiny-seqcls'), '--data', join(dir, 'mail.csv'), '--validation', join(dir, 'held.csv'),
      '--task', 'seq_cls', '--text-column', 'body', '--label-column', 'kind', '--eval-steps', '2', '--early-stopping-patience', '2',
      '--metric-for-best-model', 'eval_f1', '--target-modules', 'c_attn',
    ]);
    const { calls, consts } = readPy(join(out, 'train.py'), ['LoraConfig', 'TrainingArguments', 'EarlyStoppingCallback']);
    expect(consts.LABELS).toEqual(['ham', 'spam']);
    expect(consts.NUM_LABELS).toBe(2);
    expect(consts.TASK).toBe('SEQ_CLS');
    expect(consts.DATA).toMatchObject({ format: 'csv', text_column: 'body', label_column: 'kind' });
    expect(calls.LoraConfig.task_type).toEqual({ expr: 'TaskType.SEQ_CLS' });
    expect(calls.LoraConfig.modules_to_save).toEqual(JSON.parse(readFileSync(join(FIX, 'adapters', 'gpt2-seqcls-lora', 'adapter_config.json'), 'utf8')).modules_to_save);
    expect(calls.TrainingArguments).toMatchObject({ metric_for_best_model: 'eval_f1', load_best_model_at_end: true, eval_steps: 2 });
    expect(calls.EarlyStoppingCallback).toEqual({ early_stopping_patience: { expr: 'EARLY_STOPPING_PATIENCE' } });
    expect(consts.EARLY_STOPPING_PATIENCE).toBe(2);
    expect(readFileSync(join(out, 'data', 'held.csv'), 'utf8')).toBe(readFileSync(join(dir, 'held.csv'), 'utf8'));
    expect(readFileSync(join(out, 'train.py'), 'utf8')).toContain('AutoModelForSequenceClassification.from_pretrained');
  });

  it('the engine function takes plain data (what the studio passes) and names its files', () => {
    const peft = methodOf('LORA').config({ peftType: 'LORA', taskType: 'CAUSAL_LM', r: 4, targetModules: ['q_proj', 'v_proj'] });
    const files = pythonProject({
      model: 'HuggingFaceTB/SmolLM2-135M', modelType: 'llama', task: 'CAUSAL_LM', peft, args: { ...DEFAULT_ARGS },
      data: { train: { name: '../My Data.txt', bytes: new TextEncoder().encode('a\n\nb\n') }, txtLines: false },
    });
    expect(Object.keys(files).sort()).toEqual(['README.md', 'accelerate/deepspeed_zero2.yaml', 'accelerate/fsdp.yaml', 'accelerate/multi_gpu.yaml', 'data/My_Data.txt', 'requirements.txt', 'train.py']);
    expect(files['accelerate/fsdp.yaml']).toContain('fsdp_transformer_layer_cls_to_wrap: LlamaDecoderLayer');
    expect(files['train.py']).toContain('"format": "txt"');
  });
});
