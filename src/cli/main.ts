/**
 * PEFT Studio command line: `npm run cli -- <command> [options]` (`<command> --help` for each).
 * Results go to files (--out); progress and notes to stdout / stderr. Errors are one line on stderr:
 * exit 1 for what the engine rejects (model, adapter, data, targets), 2 for usage errors.
 */
import { pathToFileURL } from 'node:url';
import { runCli, usage, type CommandFn } from './common';

interface Entry {
  summary: string;
  load: () => Promise<CommandFn>;
}

/** Commands load lazily, so `inspect` and `--help` do not pay for tfjs start-up they do not need. */
export const COMMANDS: Record<string, Entry> = {
  inspect: { summary: 'Module tree and parameter count of a model (config.json is enough).', load: async () => (await import('./inspect')).inspectCommand },
  targets: { summary: 'Which modules a PEFT config adapts, and trainable / all parameter counts.', load: async () => (await import('./targets')).targetsCommand },
  logits: { summary: 'Logits of a model (+ adapter) for given token ids, as safetensors.', load: async () => (await import('./logits')).logitsCommand },
  train: { summary: 'Fine-tune with LoRA or prompt tuning; writes a PEFT adapter and metrics.jsonl.', load: async () => (await import('./train')).trainCommand },
  merge: { summary: "Folds an adapter into the base model's weights and writes a plain transformers model folder.", load: async () => (await import('./merge')).mergeCommand },
  'export-gguf': { summary: 'A LoRA adapter as a GGUF adapter for llama.cpp / Ollama, with a Modelfile.', load: async () => (await import('./export-gguf')).exportGgufCommand },
  'export-python': { summary: "A Python project (Trainer + PEFT, accelerate / DeepSpeed / FSDP) running train's job elsewhere.", load: async () => (await import('./export-python')).exportPythonCommand },
  push: { summary: 'Creates a Hub model repo (private by default) and uploads an adapter folder (or with --merged the merged model) with a model card.', load: async () => (await import('./push')).pushCommand },
  bench: { summary: 'Training-step and matmul speed per tfjs backend (same as npm run bench).', load: async () => (await import('./bench')).benchCommand },
};

export function mainHelp(): string {
  const rows = Object.entries(COMMANDS).map(([n, c]) => `  ${n.padEnd(15)}${c.summary}`);
  return ['Usage: npm run cli -- <command> [options]', '', 'Commands:', ...rows, '', 'Run `npm run cli -- <command> --help` for the options of a command.'].join('\n');
}

/** Dispatches argv (without node and script); resolves to the exit code. */
export async function main(argv: string[]): Promise<number> {
  return runCli(async () => {
    const [cmd, ...rest] = argv;
    if (cmd === undefined || cmd === '--help' || cmd === '-h' || cmd === 'help') {
      console.log(mainHelp());
      return;
    }
    const entry = Object.hasOwn(COMMANDS, cmd) ? COMMANDS[cmd] : undefined;
    if (!entry) throw usage(`unknown command "${cmd}"; commands are ${Object.keys(COMMANDS).join(', ')} (see --help)`);
    await (await entry.load())(rest);
  });
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
