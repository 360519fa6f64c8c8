/**
 * Images in agent mode (`tools: "agent"`), with the REAL CLIs as the accounts' child processes, each pointed at the
 * fake model server on 127.0.0.1 (test/helpers/fake-models.ts): a base64 image of the request reaches the model as
 * the provider's own image part (Claude Code: an `image` block, Codex: an `input_image` data URL, Gemini CLI:
 * `inlineData`) with the client's bytes, an earlier turn's image too (marked `<image n="k"/>` where it was); an image
 * by URL is refused with a 400 naming the block.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { crc32, deflateSync } from 'node:zlib'
import type Anthropic from '@anthropic-ai/sdk'
import { startFakeModels, type Recorded } from './helpers/fake-models.ts'
import { apiError, eventually, start, textOf } from './helpers/orchestrator.ts'

process.env.AGYC_TEST_IMAGES_KEY = 'key-images'

const MODEL = { 'claude-code': 'claude-fake-1', 'gemini-cli': 'gemini-fake', codex: 'gpt-fake' } as const
type Kind = keyof typeof MODEL
const KINDS = Object.keys(MODEL) as Kind[]

/** A real PNG of one colour (the CLIs may check what they pass): signature, IHDR, one IDAT, IEND. */
function png(width: number, height: number, rgb: readonly [number, number, number]): string {
  const chunk = (type: string, data: Buffer): Buffer => {
    const body = Buffer.concat([Buffer.from(type, 'latin1'), data])
    const out = Buffer.alloc(body.length + 8)
    out.writeUInt32BE(data.length, 0)
    body.copy(out, 4)
    out.writeUInt32BE(crc32(body), body.length + 4)
    return out
  }
  const header = Buffer.alloc(13)
  header.writeUInt32BE(width, 0)
  header.writeUInt32BE(height, 4)
  header.set([8, 2, 0, 0, 0], 8) // 8 bits, truecolour, no interlace
  const row = Buffer.from([0, ...Array.from({ length: width }, () => rgb).flat()]) // filter 0, then the pixels
  const pixels = deflateSync(Buffer.concat(Array.from({ length: height }, () => row)))
  const signature = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a])
  return Buffer.concat([signature, chunk('IHDR', header), chunk('IDAT', pixels), chunk('IEND', Buffer.alloc(0))]).toString('base64')
}

const RED = png(2, 2, [255, 0, 0])
const BLUE = png(3, 1, [0, 0, 255])
const image = (data: string): Anthropic.ImageBlockParam => ({ type: 'image', source: { type: 'base64', media_type: 'image/png', data } })

interface Seen { readonly media: string; readonly data: string }

/** the images of a model call, in order, in whichever provider's shape the CLI sent them */
function imagesIn(call: Recorded): Seen[] {
  const found: Seen[] = []
  const walk = (value: unknown): void => {
    if (Array.isArray(value)) return value.forEach(walk)
    if (value === null || typeof value !== 'object') return
    const node = value as Record<string, any>
    if (node.type === 'image' && node.source?.type === 'base64') found.push({ media: node.source.media_type, data: node.source.data })
    else if (node.type === 'input_image' && typeof node.image_url === 'string') {
      const match = /^data:([^;]+);base64,(.*)$/.exec(node.image_url)
      if (match) found.push({ media: match[1], data: match[2] })
    } else if (node.inlineData) found.push({ media: node.inlineData.mimeType, data: node.inlineData.data })
    else Object.values(node).forEach(walk)
  }
  walk(call.path.startsWith('/v1/messages') ? call.body?.messages : call.path.startsWith('/v1/responses') ? call.body?.input : call.body?.contents)
  return found
}

test('agent mode passes base64 images to each real CLI, which sends them to its model', { timeout: 240_000 }, async (t) => {
  const fake = await startFakeModels()
  t.after(() => fake.close())
  const { orch, client } = await start(t, {
    dispatcher: { requestTimeoutMs: 90_000 },
    accounts: KINDS.map((kind) => ({
      id: kind, maxConcurrency: 2, models: [MODEL[kind]],
      session: {
        kind, tools: 'agent', model: MODEL[kind], apiKey: { fromEnv: 'AGYC_TEST_IMAGES_KEY' }, idleTimeoutMs: 60_000, killGraceMs: 500,
        baseUrl: kind === 'codex' ? `${fake.url}/v1` : fake.url,
      },
    })),
  })
  await eventually(() => orch.dispatcher.accounts.every((a) => a.state === 'up' && a.sessionUp), 'every account is up', 60_000)
  const modelCalls = (since: number): Recorded[] => fake.requests.slice(since).filter((r) => r.method === 'POST')

  await t.test('an image of the last user turn reaches the model with the client\'s bytes, and the answer is 200', async () => {
    for (const kind of KINDS) {
      const before = fake.requests.length
      const { data, response } = await client.messages.create({
        model: MODEL[kind], max_tokens: 64, messages: [{ role: 'user', content: [{ type: 'text', text: 'What colour is this?' }, image(RED)] }],
      }).withResponse()
      assert.equal(response.status, 200, kind)
      assert.equal(textOf(data), 'Hello from the fake model.', kind)
      const calls = modelCalls(before)
      assert.ok(calls.length > 0, `${kind}: the CLI called the model`)
      assert.deepEqual(imagesIn(calls[0]), [{ media: 'image/png', data: RED }], `${kind}: the model saw the image, byte for byte`)
    }
  })

  await t.test('an earlier turn\'s image goes too, marked where it was, before the last turn\'s', async () => {
    for (const kind of KINDS) {
      const before = fake.requests.length
      await client.messages.create({
        model: MODEL[kind], max_tokens: 64,
        messages: [
          { role: 'user', content: [{ type: 'text', text: 'Remember this one.' }, image(RED)] },
          { role: 'assistant', content: 'Noted.' },
          { role: 'user', content: [image(BLUE), { type: 'text', text: 'And this one: which is wider?' }] },
        ],
      })
      const [call] = modelCalls(before)
      assert.deepEqual(imagesIn(call).map((i) => i.data), [RED, BLUE], `${kind}: both images, in the order of the conversation`)
      const asked = JSON.stringify(call.body)
      const marked = '<transcript>\\n<user>\\nRemember this one.\\n<image n=\\"1\\"/>\\n</user>\\n<assistant>\\nNoted.\\n</assistant>\\n</transcript>\\n\\n<image n=\\"2\\"/>\\nAnd this one'
      assert.ok(asked.includes(marked), `${kind}: the prompt marks each image where it was`)
    }
  })

  await t.test('an image by URL is refused with a 400 naming the block, and no model is called', async () => {
    for (const kind of KINDS) {
      const before = fake.requests.length
      const err = await apiError(client.messages.create({
        model: MODEL[kind], max_tokens: 64,
        messages: [{ role: 'user', content: [{ type: 'text', text: 'What is this?' }, { type: 'image', source: { type: 'url', url: 'https://example.com/a.png' } }] }],
      }))
      assert.equal(err.status, 400, kind)
      assert.equal((err.error as { error?: { type?: string } })?.error?.type, 'invalid_request_error', kind)
      assert.match(err.message, /messages\.0\.content\.1: .*base64/, `${kind}: the refusal names the block and why`)
      assert.equal(modelCalls(before).length, 0, `${kind}: nothing reached the model`)
    }
  })
})

test('an ACP agent that does not offer image input: an image is refused with a 400 saying why, text is served', async (t) => {
  const agent = fileURLToPath(new URL('./fixtures/acp-agent.mjs', import.meta.url))
  const { orch, client } = await start(t, {
    accounts: [{ id: 'gemini-text', models: [MODEL['gemini-cli']], session: { kind: 'gemini-cli', command: agent, tools: 'agent', model: MODEL['gemini-cli'], apiKey: { fromEnv: 'AGYC_TEST_IMAGES_KEY' }, killGraceMs: 500 } }],
  })
  await eventually(() => orch.dispatcher.accounts.every((a) => a.state === 'up' && a.sessionUp), 'the account is up', 20_000)
  const ask = (content: Anthropic.ContentBlockParam[]) => client.messages.create({ model: MODEL['gemini-cli'], max_tokens: 64, messages: [{ role: 'user', content }] })
  const err = await apiError(ask([{ type: 'text', text: 'What is this?' }, image(RED)]))
  assert.equal(err.status, 400)
  assert.match(err.message, /messages\.0\.content\.1: .*promptCapabilities\.image/, 'the refusal names the block and the missing capability')
  assert.equal(textOf(await ask([{ type: 'text', text: 'Just text.' }])), 'Just text.', 'the same account serves text')
})
