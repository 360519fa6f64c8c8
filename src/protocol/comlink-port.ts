/**
 * comlink over a node MessagePort. The adapter ships as UMD/CommonJS whose types declare an ES default export; under
 * node's ESM loader the default import is the function itself, which the types do not know: one cast, here.
 */
import type { Endpoint } from 'comlink'
import type { MessagePort } from 'node:worker_threads'
import adapter from 'comlink/dist/umd/node-adapter.js'

export const portEndpoint = adapter as unknown as (port: MessagePort) => Endpoint
