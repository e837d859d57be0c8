/**
 * The training memory estimate for the model and settings (weights as float32, adapter, optimizer, activations at
 * the chosen batch × length) against what the device offers, with warnings before a download that cannot fit.
 */
import type { ReactNode } from 'react';
import { useProject } from '../state/project';
import { bytes } from './format';

export function MemoryView({ confirm }: { confirm: ReactNode }) {
  const m = useProject((s) => s.memory);
  const hasModel = useProject((s) => !!s.model.info);
  if (!m || !hasModel) return null;
  const e = m.estimate;
  const l = m.limits;
  const limits = [
    l.backend && `backend ${l.backend}`,
    l.maxStorageBufferBindingSize && `WebGPU binding ≤ ${bytes(l.maxStorageBufferBindingSize)}`,
    l.maxBufferSize && `buffer ≤ ${bytes(l.maxBufferSize)}`,
    l.backend === 'wasm' && 'wasm heap ≤ 4.3 GB',
    // navigator.deviceMemory is in GiB, rounded (and capped at 8 by some browsers).
    l.deviceMemoryBytes && `device memory ≈ ${+(l.deviceMemoryBytes / 2 ** 30).toFixed(2)} GiB`,
    l.storageAvailableBytes !== undefined && `storage free ${bytes(l.storageAvailableBytes)}`,
  ].filter(Boolean);
  return (
    <div className={`memory ${m.warnings.length ? 'has-warnings' : ''}`} data-testid="memory-estimate">
      <div className="memory-head">
        <span className="label">Training memory</span>
        <strong className="mono" data-testid="memory-total">
          ≈ {bytes(e.totalBytes)}
        </strong>
        <span className="muted small">
          at batch {m.batch} × length {m.seqLen}, gradient checkpointing {m.checkpointing.on ? 'on' : 'off'}
          {m.checkpointing.choice === 'auto' ? ' (auto)' : ''}
        </span>
      </div>
      <dl className="memory-terms">
        <div>
          <dt>weights (F32)</dt>
          <dd>{bytes(e.weightsBytes)}</dd>
        </div>
        <div>
          <dt>adapter</dt>
          <dd>{bytes(e.adapterBytes)}</dd>
        </div>
        <div>
          <dt>optimizer</dt>
          <dd title="gradients + AdamW's two moments">{bytes(e.optimizerBytes)}</dd>
        </div>
        <div>
          <dt>activations</dt>
          <dd title="kept for the backward pass, and its temporaries">{bytes(e.activationsBytes)}</dd>
        </div>
        {e.lmHeadBytes > 0 && (
          <div>
            <dt>LM head + loss</dt>
            <dd title="the fused cross-entropy's working set">{bytes(e.lmHeadBytes)}</dd>
          </div>
        )}
        {!e.gradientCheckpointing && e.withCheckpointingBytes < e.totalBytes && (
          <div>
            <dt>with checkpointing</dt>
            <dd data-testid="memory-with-checkpointing">≈ {bytes(e.withCheckpointingBytes)}</dd>
          </div>
        )}
        <div>
          <dt>largest buffer</dt>
          <dd title={e.largestBuffer}>{bytes(e.largestBufferBytes)}</dd>
        </div>
      </dl>
      {limits.length > 0 && <div className="muted small">Device: {limits.join(' · ')}</div>}
      {m.warnings.length > 0 && (
        <ul className="memory-warnings" data-testid="memory-warnings">
          {m.warnings.map((w) => (
            <li key={w.code + w.message} className={w.level === 'error' ? 'error-text' : 'warn'}>
              {w.message}
            </li>
          ))}
        </ul>
      )}
      {confirm}
    </div>
  );
}
