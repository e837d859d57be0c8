/**
 * The chat playground's history: each side (adapter on, base model) keeps its own conversation, made of the
 * person's messages and that side's own replies, so neither side answers after the other's words.
 */

/** A message of the person, or a reply with each side's text. */
export type Turn = { role: 'user'; content: string } | { role: 'assistant'; on: string; off: string };

export interface ChatMessageLike {
  role: string;
  content: string;
}

/** The messages each side answers: the system prompt (when given), the person's messages, and that side's replies. */
export function conversations(system: string, turns: readonly Turn[]): { on: ChatMessageLike[]; off: ChatMessageLike[] } {
  const head = system.trim() ? [{ role: 'system', content: system }] : [];
  const side = (k: 'on' | 'off') => [...head, ...turns.map((t) => (t.role === 'user' ? { role: 'user', content: t.content } : { role: 'assistant', content: t[k] }))];
  return { on: side('on'), off: side('off') };
}
