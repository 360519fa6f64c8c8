/**
 * The request every load arm sends, in its four bodies. The strict baseline builds its one replayed answer from it,
 * so both yardsticks answer this request byte-for-byte the same size.
 */

// A one-shot first turn from no named user: what many clients asking the same look like. Session affinity (on by
// default) records its home but spreads such requests by the strategy, so the plain rows use all accounts; a
// `metadata.user_id` would make every request one conversation that goes home (that is the "one sticky session" row).
export const REQUEST = {
  model: 'claude-sonnet-4-5',
  max_tokens: 256,
  system: 'You are a concise assistant. Answer in one short sentence.',
  messages: [{ role: 'user', content: 'Say hello to the benchmark, please, in one short friendly sentence.' }],
}
export const JSON_BODY = JSON.stringify(REQUEST)
export const SSE_BODY = JSON.stringify({ ...REQUEST, stream: true })
// what session affinity costs (issue 9): the same request with affinity off, and as one sticky conversation
export const UNSTICKY_BODY = JSON.stringify({ ...REQUEST, metadata: { routing: { sticky: false } } })
export const STICKY_BODY = JSON.stringify({ ...REQUEST, metadata: { user_id: 'bench-conversation' } })
// the same request through the Chat Completions door (issue 15: its CPU per request against the Anthropic door's)
export const CHAT_REQUEST = {
  model: REQUEST.model,
  max_tokens: REQUEST.max_tokens,
  messages: [{ role: 'system', content: REQUEST.system }, ...REQUEST.messages],
}
export const CHAT_JSON_BODY = JSON.stringify(CHAT_REQUEST)
export const CHAT_SSE_BODY = JSON.stringify({ ...CHAT_REQUEST, stream: true })
