/**
 * Export beyond the tab: the merged model (F32 / F16 / BF16, sharded above a size), the GGUF adapter for
 * llama.cpp / Ollama with its Modelfile, and the run as a Python project for bigger machines.
 */
import { useState } from 'react';
import { parseShardSize } from '../engine/io/safetensors-stream';
import { canPickFolder, downloadGguf, exportPythonProject, mergeAndDownload, useExport, type ExportJob } from '../state/export-actions';
import { useProject } from '../state/project';
import { Field } from './controls';

function shardBytes(text: string): number | null {
  try {
    return parseShardSize(text);
  } catch {
    return null;
  }
}

export function BeyondTab(props: { hasAdapter: boolean }) {
  const ex = useExport();
  const hasData = useProject((s) => !!s.dataSource && !!s.model.info);
  const [dtype, setDtype] = useState<'F32' | 'F16' | 'BF16'>('F16');
  const [shard, setShard] = useState('2GB');
  const [pick, setPick] = useState(canPickFolder());
  const [outtype, setOuttype] = useState<'F32' | 'F16'>('F32');
  const [from, setFrom] = useState('');
  const maxShard = shardBytes(shard);
  const busy = ex.busy !== null;
  const line = (job: ExportJob) => (
    <>
      {ex.result?.job === job && <p className="small" data-testid={`${job}-result`}>{ex.result.text}</p>}
      {ex.error?.job === job && <p className="error-text small" data-testid={`${job}-error`}>{ex.error.message}</p>}
    </>
  );

  return (
    <div className="beyond" data-testid="beyond-tab">
      <h3>Beyond the tab</h3>
      <div className="row wrap">
        <Field label="Merged weights" hint="Type of the written weights (F16 / BF16 halve the size)">
          {(id) => (
            <select id={id} data-testid="merge-dtype" value={dtype} onChange={(e) => setDtype(e.target.value as typeof dtype)}>
              <option value="F32">F32</option>
              <option value="F16">F16</option>
              <option value="BF16">BF16</option>
            </select>
          )}
        </Field>
        <Field label="Max shard size" hint="Above it the weights are split into model-0000K-of-0000N.safetensors + an index (e.g. 2GB, 500MB)">
          {(id) => <input id={id} data-testid="merge-shard" value={shard} onChange={(e) => setShard(e.target.value)} aria-invalid={maxShard === null} size={8} />}
        </Field>
        {canPickFolder() && (
          <label className="small" title="Writes each file straight into the folder as it is made, instead of downloading them one by one">
            <input type="checkbox" data-testid="merge-pick" checked={pick} onChange={(e) => setPick(e.target.checked)} /> into a folder I pick
          </label>
        )}
        <button
          type="button"
          data-testid="merge-download"
          disabled={!props.hasAdapter || busy || maxShard === null}
          title="Folds the adapter into the base weights (PEFT's merge_and_unload): a plain transformers model folder"
          onClick={() => void mergeAndDownload({ dtype, maxShardSize: maxShard!, pickFolder: pick })}
        >
          Merge and download
        </button>
      </div>
      {ex.busy === 'merge' && (
        <p className="small" data-testid="merge-progress">
          Merging{ex.progress ? `: ${ex.progress.done} / ${ex.progress.total} tensors (${ex.progress.name})` : '…'}
        </p>
      )}
      {line('merge')}
      <div className="row wrap">
        <Field label="GGUF tensors" hint="F32 as llama.cpp's converter writes by default, or F16">
          {(id) => (
            <select id={id} data-testid="gguf-outtype" value={outtype} onChange={(e) => setOuttype(e.target.value as typeof outtype)}>
              <option value="F32">F32</option>
              <option value="F16">F16</option>
            </select>
          )}
        </Field>
        <Field label="Ollama FROM" hint="The base model in Ollama (e.g. qwen2.5:0.5b) or a path to it as GGUF; empty: ./<model>.gguf">
          {(id) => <input id={id} data-testid="gguf-from" value={from} placeholder="./model.gguf" onChange={(e) => setFrom(e.target.value)} size={14} />}
        </Field>
        <button
          type="button"
          data-testid="gguf-download"
          disabled={!props.hasAdapter || busy}
          title="A LoRA adapter as a GGUF adapter for llama.cpp (--lora) and Ollama (ADAPTER), with a Modelfile"
          onClick={() => void downloadGguf({ outtype, ollamaFrom: from.trim() || undefined })}
        >
          Download GGUF adapter
        </button>
      </div>
      {line('gguf')}
      <div className="row wrap">
        <button
          type="button"
          data-testid="python-export"
          disabled={!hasData || busy}
          title="train.py (transformers Trainer + PEFT) with these settings and data, requirements, accelerate / DeepSpeed / FSDP configs, README"
          onClick={() => void exportPythonProject()}
        >
          Export as Python project
        </button>
        <span className="muted small">runs this job with accelerate launch train.py on bigger machines</span>
      </div>
      {line('python')}
    </div>
  );
}
