/** Node-only: loads a tokenizer from a directory holding tokenizer.json (+ optional tokenizer_config.json). */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { EngineError } from '../errors';
import { loadTokenizer, type Tokenizer } from '../tokenizer';
import { readJsonObject } from './text';

function readJson(path: string): object {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    throw new EngineError('BAD_CONFIG', `Could not read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  return readJsonObject(bytes, path, 'BAD_CONFIG');
}

/** e.g. `await loadTokenizerFromDir('public/models/sotu-gpt2')`. */
export async function loadTokenizerFromDir(dir: string): Promise<Tokenizer> {
  const jsonPath = join(dir, 'tokenizer.json');
  if (!existsSync(jsonPath)) {
    throw new EngineError('BAD_CONFIG', `${jsonPath} not found: the directory has no Hugging Face tokenizer.json.`);
  }
  const configPath = join(dir, 'tokenizer_config.json');
  return loadTokenizer({
    tokenizerJson: readJson(jsonPath),
    tokenizerConfig: existsSync(configPath) ? readJson(configPath) : undefined,
    fileName: jsonPath,
  });
}
