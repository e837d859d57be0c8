/**
 * Every failure a person can act on is an EngineError: a stable `code` for programs (UI, CLI exit paths)
 * and a message that says what was wrong and where.
 */
export type ErrorCode =
  | 'BAD_SAFETENSORS'
  | 'BAD_CONFIG'
  | 'UNSUPPORTED_ARCHITECTURE'
  | 'MISSING_WEIGHT'
  | 'SHAPE_MISMATCH'
  | 'TARGETS_NOT_FOUND'
  | 'BAD_PEFT_CONFIG'
  | 'ADAPTER_MISMATCH'
  | 'BAD_DATA'
  | 'NAN_LOSS'
  | 'BACKEND'
  | 'OUT_OF_MEMORY'
  | 'HUB'
  | 'CANCELLED'
  | 'BAD_ARGUMENT'
  | 'BAD_CHECKPOINT'
  /** The adapter's method cannot be folded into the base weights (prompt methods). */
  | 'NOT_MERGEABLE'
  /** An export format cannot hold this adapter (a GGUF adapter of a method llama.cpp does not run, an architecture it lacks). */
  | 'NOT_EXPORTABLE'
  /** The WebGPU device was lost mid-run (driver reset, GPU removed): its tensors are gone. */
  | 'DEVICE_LOST';

export class EngineError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string) {
    super(message);
    this.name = 'EngineError';
    this.code = code;
  }
}

/** Turns anything thrown into a one-line message fit for a person. */
export function describeError(e: unknown): string {
  if (e instanceof EngineError) return e.message;
  if (e instanceof Error) {
    const m = e.message || String(e);
    if (isOutOfMemory(m)) {
      return `Out of memory: ${m}. Try a smaller batch size, sequence length or model.`;
    }
    return m;
  }
  return String(e);
}

/** Messages the JavaScript engine, tfjs and WebGPU give when memory runs out. */
export function isOutOfMemory(message: string): boolean {
  return /out of memory|OOM|allocation failed|Failed to allocate|Array buffer allocation|Invalid typed array length|Invalid array buffer length|memory access out of bounds/i.test(message);
}
