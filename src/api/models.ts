/** GET /v1/models and /v1/models/:id: the models the config declares, in the Anthropic list shape. */
import type { Context } from 'hono'
import { OrchestratorError } from '../errors.ts'
import type { AppDeps, AppEnv } from './app.ts'

const CREATED_AT = '2025-01-01T00:00:00Z'
const CREATED = Math.floor(Date.parse(CREATED_AT) / 1000)
/** one entry both SDKs read: Anthropic's fields (type, display_name, created_at) and OpenAI's (object, created, owned_by) */
const entry = (id: string) => ({ type: 'model', id, display_name: id, created_at: CREATED_AT, object: 'model', created: CREATED, owned_by: 'agyc' })

export function modelsHandlers({ dispatcher }: AppDeps) {
  return {
    list(c: Context<AppEnv>): Response {
      const data = dispatcher.models.map(entry)
      return c.json({ object: 'list', data, has_more: false, first_id: data[0]?.id ?? null, last_id: data.at(-1)?.id ?? null })
    },
    get(c: Context<AppEnv>): Response {
      const id = c.req.param('id') ?? ''
      if (!dispatcher.models.includes(id)) throw new OrchestratorError('AGYC_NOT_FOUND', `model "${id}" is not declared by any account`)
      return c.json(entry(id))
    },
  }
}
