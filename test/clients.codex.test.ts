/**
 * Issue 15: the real Codex CLI as a client (`codex exec` with a custom provider whose base URL is the orchestrator,
 * `wire_api = "responses"`): a plain prompt answered by a mock account, and a task through an `http` account whose
 * fake model (an Anthropic-shaped server in this test) calls Codex's own shell tool: the command runs in Codex's
 * working directory, on this machine, and the final answer reaches Codex.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { createServer, type Server } from 'node:http'
import type { AddressInfo } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { start } from './helpers/orchestrator.ts'

const CODEX = new URL('../node_modules/.bin/codex', import.meta.url).pathname

/** `codex exec PROMPT` in its own home and working directory, pointed at the orchestrator; its output and exit code */
async function codexExec(t: TestContext, orchestratorUrl: string, prompt: string): Promise<{ code: number | null; out: string; work: string; home: string }> {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-codex-client-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const home = join(dir, 'home')
  const work = join(dir, 'work')
  mkdirSync(join(home, '.codex'), { recursive: true })
  mkdirSync(work)
  writeFileSync(join(home, '.codex', 'config.toml'), [
    'model = "gpt-5-codex"', 'model_provider = "agyc"', 'approval_policy = "never"', 'sandbox_mode = "danger-full-access"',
    '[model_providers.agyc]', 'name = "agyc"', `base_url = "${orchestratorUrl}/v1"`, 'wire_api = "responses"', 'env_key = "AGYC_CLIENT_KEY"',
    'request_max_retries = 0', 'stream_max_retries = 0', '[analytics]', 'enabled = false', '',
  ].join('\n'))
  const child = spawn(CODEX, ['exec', '--skip-git-repo-check', prompt], {
    cwd: work, env: { PATH: process.env.PATH, HOME: home, CODEX_HOME: join(home, '.codex'), AGYC_CLIENT_KEY: 'unused-locally' },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
  let out = ''
  child.stdout.setEncoding('utf8').on('data', (s: string) => { out += s })
  child.stderr.setEncoding('utf8').on('data', (s: string) => { out += s })
  const code = await new Promise<number | null>((resolve) => child.on('close', resolve))
  clearTimeout(timer)
  return { code, out, work, home }
}

const sse = (event: string, data: object): string => `event: ${event}\ndata: ${JSON.stringify(data)}\n\n`

/** A fake Anthropic model: its first answer calls Codex's shell tool, the next one (after the result) answers in text. */
async function fakeModel(t: TestContext, command: string): Promise<{ url: string; seen: { results: string[] } }> {
  const seen = { results: [] as string[] }
  const server: Server = createServer(async (req, res) => {
    let text = ''
    for await (const chunk of req) text += chunk
    const body = JSON.parse(text) as { stream?: boolean; tools?: { name: string }[]; messages: { role: string; content: unknown }[] }
    const last = body.messages.at(-1)!
    const results = Array.isArray(last.content) ? (last.content as { type: string; content?: unknown }[]).filter((b) => b.type === 'tool_result') : []
    const shell = body.tools?.find((tool) => tool.name === 'exec_command' || tool.name === 'shell')
    res.writeHead(200, { 'content-type': 'text/event-stream' })
    res.write(sse('message_start', { type: 'message_start', message: { id: 'msg_fake', type: 'message', role: 'assistant', model: 'fake', content: [], stop_reason: null, stop_sequence: null, usage: { input_tokens: 10, output_tokens: 0 } } }))
    if (results.length === 0 && shell) {
      const input = shell.name === 'exec_command' ? { cmd: command } : { command: ['bash', '-lc', command] }
      res.write(sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'tool_use', id: 'toolu_01fakeshell', name: shell.name, input: {} } }))
      res.write(sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'input_json_delta', partial_json: JSON.stringify(input) } }))
      res.write(sse('content_block_stop', { type: 'content_block_stop', index: 0 }))
      res.write(sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'tool_use', stop_sequence: null }, usage: { output_tokens: 5 } }))
    } else {
      seen.results.push(JSON.stringify(results.map((r) => r.content)))
      res.write(sse('content_block_start', { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } }))
      res.write(sse('content_block_delta', { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'The file is written.' } }))
      res.write(sse('content_block_stop', { type: 'content_block_stop', index: 0 }))
      res.write(sse('message_delta', { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 4 } }))
    }
    res.end(sse('message_stop', { type: 'message_stop' }))
  })
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve))
  t.after(() => new Promise<void>((resolve) => server.close(() => resolve())))
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, seen }
}

test('codex exec through the Responses door: a plain prompt answered by a mock account', { timeout: 120_000 }, async (t) => {
  const { url } = await start(t, { accounts: [{ id: 'm', session: { kind: 'mock', text: 'Hello from the pool' } }] })
  const run = await codexExec(t, url, 'say hi')
  assert.equal(run.code, 0, run.out)
  assert.match(run.out, /Hello from the pool/)
})

test('codex exec through an http account whose model calls Codex\'s shell tool: the command runs in Codex\'s working dir', { timeout: 120_000 }, async (t) => {
  const model = await fakeModel(t, 'echo written-by-the-model > out.txt && echo ok')
  const { url } = await start(t, { accounts: [{ id: 'h', session: { kind: 'http', baseUrl: model.url } }] })
  const run = await codexExec(t, url, 'write the file')
  assert.equal(run.code, 0, run.out)
  const file = join(run.work, 'out.txt')
  assert.ok(existsSync(file), `the command ran in Codex's working dir:\n${run.out}`)
  assert.equal(readFileSync(file, 'utf8').trim(), 'written-by-the-model')
  assert.match(run.out, /The file is written\./, 'the final answer reached Codex')
  assert.equal(model.seen.results.length, 1, 'the tool result came back to the model')
})
