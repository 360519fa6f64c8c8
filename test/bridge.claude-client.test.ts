/**
 * The real Claude Code as the CLIENT of the tool bridge: `claude -p "Create the file …" --allowedTools Write`, in a
 * working directory of its own, pointed at the orchestrator, whose accounts run the real Codex, Gemini CLI and Claude
 * Code against scripted fake models (127.0.0.1 only). The fake model calls the client's `Write` tool: the file must
 * appear in the client's directory with the model's content, never under the orchestrator's state, and the client
 * must print the model's final answer.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { startFakeClaudeModel, toolResults } from './helpers/fake-claude-tool-model.ts'
import { startFakeToolModel, type ModelCall } from './helpers/fake-tool-model.ts'
import { eventually, start } from './helpers/orchestrator.ts'

process.env.AGYC_TEST_BRIDGE_KEY = 'key-bridge'
const apiKey = { fromEnv: 'AGYC_TEST_BRIDGE_KEY' }
const CLAUDE = join(process.cwd(), 'node_modules/.bin/claude')
const CONTENT = 'hello from the model\n'
const FINAL = 'Done: the file is written.'

/** runs the client to its end; its own HOME and config dir, the orchestrator as its API */
function runClient(url: string, cwd: string, prompt: string, model: string): Promise<{ code: number | null; out: string; err: string }> {
  const home = mkdtempSync(join(tmpdir(), 'agyc-client-home-'))
  const child = spawn(CLAUDE, ['-p', prompt, '--allowedTools', 'Write', '--model', model], {
    cwd,
    env: {
      PATH: process.env.PATH ?? '', HOME: home, CLAUDE_CONFIG_DIR: join(home, '.claude'), ANTHROPIC_BASE_URL: url, ANTHROPIC_API_KEY: 'client-key',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1', DISABLE_TELEMETRY: '1', DISABLE_AUTOUPDATER: '1', DISABLE_ERROR_REPORTING: '1', CLAUDE_CODE_MAX_RETRIES: '0',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let out = ''
  let err = ''
  child.stdout.on('data', (d: Buffer) => { out += d })
  child.stderr.on('data', (d: Buffer) => { err += d })
  const timer = setTimeout(() => child.kill('SIGKILL'), 90_000)
  return new Promise((resolve) => child.on('close', (code) => {
    clearTimeout(timer)
    rmSync(home, { recursive: true, force: true })
    resolve({ code, out, err })
  }))
}

/** every file named `name` under `dir` */
function findFiles(dir: string, name: string): string[] {
  const found: string[] = []
  for (const entry of readdirSync(dir, { withFileTypes: true, recursive: true })) if (entry.isFile() && entry.name === name) found.push(join(entry.parentPath, entry.name))
  return found
}

test('the real Claude Code as the client: the model\'s Write runs on the client, through each preset', { timeout: 300_000 }, async (t) => {
  let target = ''
  // Codex and Gemini CLI: the model calls Write once the client offered it, then ends when the result came back
  const toolModel = await startFakeToolModel((call: ModelCall) => {
    const gemini = call.provider === 'gemini'
    const offered = gemini
      ? (call.body?.tools ?? []).flatMap((x: { functionDeclarations?: { name: string }[] }) => (x.functionDeclarations ?? []).map((f) => f.name))
      : (call.body?.tools ?? []).map((x: { name?: string }) => x.name)
    const answered = gemini
      ? JSON.stringify(call.body?.contents ?? []).includes('functionResponse')
      : (call.body?.input ?? []).some((i: { type?: string }) => i.type === 'function_call_output')
    const write = gemini ? 'mcp_client_Write' : 'Write'
    if (offered.includes(write) && !answered) return { text: ['Writing it.'], calls: [{ name: write, args: { file_path: target, content: CONTENT } }] }
    return { text: [FINAL] }
  })
  const claudeModel = await startFakeClaudeModel((call) => {
    const offered = (call.body?.tools ?? []).map((x: { name?: string }) => x.name)
    if (offered.includes('Write') && toolResults(call).length === 0) return { text: ['Writing it.'], calls: [{ name: 'Write', input: { file_path: target, content: CONTENT } }] }
    return { text: [FINAL] }
  })
  t.after(() => Promise.all([toolModel.close(), claudeModel.close()]))
  const common = { apiKey, killGraceMs: 500, idleTimeoutMs: 60_000 }
  const accounts = {
    codex: { id: 'codex-a', maxConcurrency: 2, models: ['gpt-fake'], session: { kind: 'codex', baseUrl: `${toolModel.url}/v1`, model: 'gpt-fake', ...common } },
    'gemini-cli': { id: 'gemini-a', maxConcurrency: 2, models: ['gemini-fake'], session: { kind: 'gemini-cli', baseUrl: toolModel.url, model: 'gemini-fake', ...common } },
    'claude-code': { id: 'claude-a', maxConcurrency: 2, models: ['claude-fake-1'], session: { kind: 'claude-code', baseUrl: claudeModel.url, model: 'claude-fake-1', ...common } },
  }
  const { url, orch, dir, logs } = await start(t, { accounts: Object.values(accounts) })
  await eventually(() => orch.dispatcher.accounts.every((a) => a.state === 'up' && a.sessionUp), 'every account is up', 60_000)

  for (const [kind, account] of Object.entries(accounts)) {
    await t.test(`${kind}: the file appears in the client's directory, nowhere in the orchestrator's state`, async () => {
      const work = mkdtempSync(join(tmpdir(), 'agyc-client-work-'))
      t.after(() => rmSync(work, { recursive: true, force: true }))
      target = join(work, 'out.txt')
      const ran = await runClient(url, work, `Create the file ${target} saying hello`, account.models[0])
      assert.equal(ran.code, 0, `${kind}: the client ended well: ${ran.err.slice(0, 500)}`)
      assert.equal(ran.out.trim(), FINAL, `${kind}: the model's final answer reached the client`)
      assert.ok(existsSync(target), `${kind}: the client wrote the file`)
      assert.equal(readFileSync(target, 'utf8'), CONTENT, `${kind}: with the model's content`)
      assert.deepEqual(findFiles(dir, 'out.txt'), [], `${kind}: nothing written under the orchestrator's state root`)
      const continued = logs.filter((l) => l.msg === 'request' && l.account === account.id && typeof l.continues === 'string')
      assert.equal(continued.length, 1, `${kind}: the client's tool result continued the parked CLI (access line "continues")`)
    })
  }
})
