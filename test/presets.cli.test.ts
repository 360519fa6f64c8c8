/**
 * The three agent-CLI presets with the REAL CLIs (installed as dev dependencies) as the accounts' child processes,
 * each pointed by its own base-URL setting at a fake model server this test starts on 127.0.0.1 (nothing reaches the
 * internet). One orchestrator serves every case: the CLIs are heavy (0.3–2.9 s to start, 150–300 MB each).
 */
import assert from 'node:assert/strict'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import Anthropic from '@anthropic-ai/sdk'
import { startFakeModels, type FakeModels } from './helpers/fake-models.ts'
import { apiError, eventually, start, textOf, type Started } from './helpers/orchestrator.ts'
import { runAgyc } from './helpers/process.ts'

const KEYS = {
  'claude-a': 'key-claude-a', 'claude-b': 'key-claude-b', 'gemini-a': 'key-gemini-a', 'codex-a': 'key-codex-a', 'codex-b': 'key-codex-b',
} as const
type AccountId = keyof typeof KEYS
for (const [id, key] of Object.entries(KEYS)) process.env[`AGYC_TEST_${id.toUpperCase().replace('-', '_')}`] = key
const keyEnv = (id: AccountId) => ({ fromEnv: `AGYC_TEST_${id.toUpperCase().replace('-', '_')}` })

/** the model name routes a request to the accounts of one preset */
const MODEL = { 'claude-code': 'claude-fake-1', 'gemini-cli': 'gemini-fake', codex: 'gpt-fake' } as const
type Kind = keyof typeof MODEL
const ACCOUNTS: Record<Kind, AccountId[]> = { 'claude-code': ['claude-a', 'claude-b'], 'gemini-cli': ['gemini-a'], codex: ['codex-a', 'codex-b'] }
const KINDS = Object.keys(MODEL) as Kind[]

/** in each account's system prompt: the model calls show it arrived */
const SYSTEM_MARK = 'You answer for the account named'

function account(id: AccountId, kind: Kind, fake: FakeModels) {
  const session: Record<string, unknown> = {
    kind, apiKey: keyEnv(id), model: MODEL[kind], idleTimeoutMs: 60_000, killGraceMs: 500, systemPrompt: `${SYSTEM_MARK} ${id}`,
  }
  session.baseUrl = kind === 'codex' ? `${fake.url}/v1` : fake.url
  return { id, maxConcurrency: 2, models: [MODEL[kind]], session }
}

const ask = (kind: Kind, content: string | Anthropic.ContentBlockParam[], extra: Partial<Anthropic.MessageCreateParamsNonStreaming> = {}) => ({
  model: MODEL[kind], max_tokens: 256, messages: [{ role: 'user' as const, content }], ...extra,
})


/** runs bin/agyc as a user does */
const agyc = runAgyc

/** what the fake model server was asked with this account's key */
const seenBy = (fake: FakeModels, id: AccountId) => fake.requests.filter((r) => r.key === KEYS[id] && r.method === 'POST')

test('agent CLI presets through the orchestrator, with the real CLIs', { timeout: 240_000 }, async (t) => {
  const fake = await startFakeModels()
  t.after(() => fake.close())
  const started: Started = await start(t, {
    // a retry budget that never runs out: each subtest counts what the failover to a preset's second account did
    // (the default budget, 3 failovers per 10 s at this traffic, ran out on a fast run and left an account untried)
    dispatcher: { strategy: 'round-robin', maxAttempts: 2, requestTimeoutMs: 90_000, retryBudgetMin: 1_000 },
    health: { defaultCooldownMs: 5_000 },
    accounts: KINDS.flatMap((kind) => ACCOUNTS[kind].map((id) => account(id, kind, fake))),
  })
  const { orch, client } = started
  t.after(() => { if (process.env.DUMP_LOGS) for (const l of started.logs) if ((l.level as number) >= 40) console.log(JSON.stringify(l).slice(0, 400)) })
  const handle = (id: AccountId) => orch.dispatcher.accounts.find((a) => a.id === id)!
  // the long-lived CLIs (Gemini ~2 s, Codex ~0.3 s) must be up before the first request
  await eventually(() => KINDS.every((k) => ACCOUNTS[k].every((id) => handle(id).state === 'up' && handle(id).sessionUp)), 'every account is up', 60_000)

  await t.test('each preset answers a non-streamed request with the text and token counts of its CLI', async () => {
    for (const kind of KINDS) {
      const { data, response } = await client.messages.create(ask(kind, 'Say hello')).withResponse()
      assert.equal(textOf(data), 'Hello from the fake model.', kind)
      assert.equal(data.stop_reason, 'end_turn', kind)
      // the fake server's counts, as the CLI reported them (our own estimate would be ~3 tokens)
      assert.equal(data.usage.input_tokens, 101, kind)
      assert.equal(data.usage.output_tokens, 7, kind)
      const served = response.headers.get('x-agyc-account') as AccountId
      assert.ok(ACCOUNTS[kind].includes(served), `${kind} served by ${served}`)
      assert.ok(seenBy(fake, served).length > 0, `${served}'s CLI called the model with its own key`)
    }
  })

  await t.test('each CLI runs the account\'s model, with the account\'s system prompt added to its own', async () => {
    for (const kind of KINDS) {
      const before = fake.requests.length
      const { response } = await client.messages.create(ask(kind, 'who are you?')).withResponse()
      const served = response.headers.get('x-agyc-account') as AccountId
      const calls = fake.requests.slice(before).filter((r) => r.method === 'POST')
      assert.ok(calls.length > 0, kind)
      for (const call of calls) {
        const model = kind === 'gemini-cli' ? decodeURIComponent(call.path).split('/models/')[1]?.split(':')[0] : call.body?.model
        assert.equal(model, MODEL[kind], `${kind}: the account's model`)
        assert.ok(JSON.stringify(call.body).includes(`${SYSTEM_MARK} ${served}`), `${kind}: the system prompt of ${served} reached the model`)
      }
    }
  })

  await t.test('each preset streams the text deltas its CLI prints', async () => {
    for (const kind of KINDS) {
      const stream = client.messages.stream(ask(kind, 'Say hello, streamed'))
      const deltas: string[] = []
      stream.on('text', (d) => deltas.push(d))
      const final = await stream.finalMessage()
      assert.equal(textOf(final), 'Hello from the fake model.', kind)
      assert.deepEqual(deltas, ['Hello', ' from the', ' fake model.'], `${kind}: one delta per delta of the model`)
      assert.equal(final.usage.output_tokens, 7, kind)
      assert.equal(final.stop_reason, 'end_turn', kind)
    }
  })

  await t.test('requests stay independent and warm: Claude Code a fresh process started ahead, Gemini CLI and Codex one process with a fresh session each', async () => {
    for (const kind of KINDS) {
      const ids = ACCOUNTS[kind]
      const pidsBefore = new Set(ids.flatMap((id) => [...handle(id).childPids]))
      // Claude Code's next process is already running before its request exists (prewarm)
      assert.ok(pidsBefore.size >= ids.length, `${kind}: a process per account is up before the request`)
      const before = fake.requests.length
      const words = ['first-7f3a', 'second-9b1c', 'third-2d4e', 'fourth-5e6f']
      for (const word of words) await client.messages.create(ask(kind, `remember ${word}`))
      const calls = fake.requests.slice(before).filter((r) => r.method === 'POST').map((r) => JSON.stringify(r.body))
      // each request's model call carries its own prompt and none of the earlier ones: no shared conversation
      words.forEach((word, i) => {
        const mine = calls.filter((c) => c.includes(word))
        assert.ok(mine.length > 0, `${kind}: the call for ${word}`)
        for (const earlier of words.slice(0, i)) assert.equal(mine.some((c) => c.includes(earlier)), false, `${kind}: the call for ${word} carries ${earlier}`)
      })
      const pidsAfter = new Set(ids.flatMap((id) => [...handle(id).childPids]))
      if (kind === 'claude-code') {
        // a process served one request and exited; its replacement was started ahead of the next
        await eventually(() => [...pidsBefore].every((pid) => !handle(ids[0]).childPids.has(pid) && !handle(ids[1]).childPids.has(pid)), 'the processes that served have exited')
        await eventually(() => ids.every((id) => handle(id).childPids.size >= 1), 'a warm process waits again on every account')
      } else {
        assert.deepEqual([...pidsAfter].sort(), [...pidsBefore].sort(), `${kind}: the same long-lived process served every request`)
      }
    }
  })

  await t.test('a prompt with shell metacharacters reaches the model verbatim and runs nothing', async () => {
    const marker = join(started.dir, 'pwned')
    const prompt = `--version $(touch ${marker}) \`touch ${marker}\`; touch ${marker} | cat && echo "q'uote" > ${marker} \\ {prompt} %s`
    for (const kind of KINDS) {
      const before = fake.requests.length
      const answer = await client.messages.create(ask(kind, prompt))
      assert.equal(textOf(answer), 'Hello from the fake model.', kind)
      const asked = fake.requests.slice(before).filter((r) => r.method === 'POST').map((r) => JSON.stringify(r.body))
      assert.ok(asked.some((body) => body.includes(JSON.stringify(prompt).slice(1, -1))), `${kind}: the prompt arrived as it was sent`)
    }
    assert.equal(existsSync(marker), false, 'nothing was executed')
  })

  await t.test('the agent\'s tool calls are surfaced as text lines of the answer, never as tool_use blocks', async () => {
    // the fake model asks for a tool (Claude Code: Glob; Gemini CLI: glob; Codex: exec_command "ls"), the CLI runs it (or
    // is refused it) and goes back to the model with the result, which the model then answers
    const returned = { 'claude-code': '"tool_result"', 'gemini-cli': 'functionResponse', codex: 'function_call_output' }
    const summary = { 'claude-code': /^\[tool Glob: \{"pattern":"\*\.md"\}\]$/, 'gemini-cli': /^\[tool [^\]]+\]$/, codex: /^\[tool shell: (\/bin\/bash -lc )?ls\]$/ }
    for (const kind of KINDS) {
      const before = fake.requests.length
      const message = await client.messages.create(ask(kind, 'which markdown files are there? [[tool]]'))
      const calls = fake.requests.slice(before).filter((r) => r.method === 'POST')
      assert.ok(calls.length >= 2 && JSON.stringify(calls.at(-1)!.body).includes(returned[kind]), `${kind}: the CLI went back to the model with the tool's result`)
      assert.equal(message.content.every((b) => b.type === 'text'), true, `${kind}: no tool_use block reaches the client`)
      const [line, ...rest] = textOf(message).split('\n\n')
      assert.match(line, summary[kind], `${kind}: ${textOf(message)}`)
      assert.equal(rest.join('\n\n'), 'Hello from the fake model.', kind)
      assert.equal(message.stop_reason, 'end_turn')
    }
  })

  await t.test('a conversation becomes one prompt: system, earlier turns as a transcript, then the last user turn', async () => {
    const before = fake.requests.length
    await client.messages.create({
      model: MODEL.codex, max_tokens: 64, system: 'Answer in French.',
      messages: [{ role: 'user', content: 'first question' }, { role: 'assistant', content: 'first answer' }, { role: 'user', content: 'second question' }],
    })
    const body = JSON.stringify(fake.requests.slice(before).find((r) => r.path.startsWith('/v1/responses'))?.body)
    const expected = '<system>\nAnswer in French.\n</system>\n\n<transcript>\n<user>\nfirst question\n</user>\n<assistant>\nfirst answer\n</assistant>\n</transcript>\n\nsecond question'
    assert.ok(body.includes(JSON.stringify(expected).slice(1, -1)), 'the rendered prompt reached the model')
  })

  await t.test('what a CLI cannot take is refused with a 400 naming the block', async () => {
    // (base64 images are passed: test/presets.images.test.ts)
    const document: Anthropic.DocumentBlockParam = { type: 'document', source: { type: 'text', media_type: 'text/plain', data: 'a memo' } }
    for (const kind of KINDS) {
      const err = await apiError(client.messages.create(ask(kind, [{ type: 'text', text: 'what is this?' }, document])))
      assert.equal(err.status, 400, kind)
      assert.equal((err.error as { error?: { type?: string } })?.error?.type, 'invalid_request_error', kind)
      assert.match(err.message, /messages\.0\.content\.1/, `${kind}: the refusal names the block`)
    }
  })

  await t.test('an upstream 429 seen by the CLI puts the account in cooldown until the reset it reports', async () => {
    for (const kind of KINDS) {
      const ids = ACCOUNTS[kind]
      // Gemini reports Google's RetryInfo ("Suggested retry after 42s"), Codex a quota's reset ("try again at 3:03 PM"),
      // Claude Code with an API key no time at all (the default cooldown applies)
      for (const id of ids) fake.failing.set(KEYS[id], { status: 429, retryAfterS: 42, ...(kind === 'codex' ? { quotaResetS: 3_600 } : {}) })
      const calls = Object.fromEntries(ids.map((id) => [id, seenBy(fake, id).length]))
      const t0 = Date.now()
      const err = await apiError(client.messages.create(ask(kind, 'are you there?')))
      const t1 = Date.now()
      assert.equal(err.status, 429, kind)
      for (const id of ids) {
        const outlier = handle(id).outlier
        assert.equal(outlier.state(), 'cooling', `${id} cools down`)
        // the cooldown began between t0 and t1, however long the CLIs took on a loaded machine: bound it from both ends
        const [from, to] = [(outlier.cooldownUntil - t1) / 1000, (outlier.cooldownUntil - t0) / 1000]
        const within = (lo: number, hi: number): boolean => to >= lo && from <= hi
        if (kind === 'gemini-cli') assert.ok(within(41, 43), `${id}: ${from}–${to}s`)
        if (kind === 'codex') assert.ok(within(3_500, 3_661), `${id}: ${from}–${to}s`)
        if (kind === 'claude-code') assert.ok(within(4.9, 5.1), `${id}: ${from}–${to}s`)
        // the CLI's own retries are capped: one model call, then the orchestrator decides (it failed over)
        assert.equal(seenBy(fake, id).slice(calls[id]).length, 1, `${id}: the CLI called the model once`)
      }
      // while every account of the preset cools down, its model is answered at once, not queued
      assert.equal((await apiError(client.messages.create(ask(kind, 'again?')))).status, 529, kind)
      for (const id of ids) {
        fake.failing.delete(KEYS[id])
        handle(id).outlier.reset()
      }
    }
  })

  await t.test('a CLI whose credentials are refused answers 401 and counts against its account', async () => {
    for (const kind of KINDS) {
      const ids = ACCOUNTS[kind]
      for (const id of ids) fake.failing.set(KEYS[id], { status: 401 })
      const err = await apiError(client.messages.create(ask(kind, 'who am I?')))
      assert.equal(err.status, 401, kind)
      assert.equal((err.error as { error?: { type?: string } })?.error?.type, 'authentication_error', kind)
      for (const id of ids) {
        assert.equal(handle(id).outlier.consecutive, 1, `${id}: one failure on its record`)
        fake.failing.delete(KEYS[id])
        handle(id).outlier.reset()
      }
    }
  })

  await t.test('a client that leaves stops its request in the CLI, and the account serves the next one', async () => {
    fake.holdMs = 1_500
    try {
      for (const kind of KINDS) {
        const before = fake.requests.length
        const controller = new AbortController()
        const pending = client.messages.create(ask(kind, 'a slow one'), { signal: controller.signal })
        await eventually(() => fake.requests.slice(before).some((r) => r.method === 'POST'), `${kind} reached the model`, 20_000)
        controller.abort()
        await assert.rejects(pending)
        const abandoned = fake.abandoned.length
        // the CLI itself hung up on the model: the cancel reached it (Claude Code is killed, Gemini CLI gets
        // session/cancel, Codex turn/interrupt)
        await eventually(() => fake.abandoned.length > abandoned, `${kind} stopped its model call`, 5_000)
        fake.holdMs = 0
        const next = await client.messages.create(ask(kind, 'and now?'))
        assert.equal(textOf(next), 'Hello from the fake model.', kind)
        for (const id of ACCOUNTS[kind]) assert.equal(handle(id).outlier.consecutive, 0, `${id}: a cancel is not the account's failure`)
        fake.holdMs = 1_500
      }
    } finally {
      fake.holdMs = 0
    }
    // Claude Code's process of the cancelled request is gone: only warm ones (and none running) remain
    await eventually(() => ACCOUNTS['claude-code'].every((id) => handle(id).childPids.size <= 1), 'no claude-code process outlives its request', 10_000)
  })

  await t.test('two accounts of one preset keep separate state directories', async () => {
    for (const [kind, dirOf] of [['claude-code', '.claude'], ['codex', '.codex']] as const) {
      const [a, b] = ACCOUNTS[kind]
      // round-robin: two requests, one per account
      for (let i = 0; i < 2; i++) await client.messages.create(ask(kind, 'hello again'))
      assert.ok(seenBy(fake, a).length > 0 && seenBy(fake, b).length > 0, `${kind}: both accounts called with their own keys`)
      const stateA = handle(a).config.stateDir
      const stateB = handle(b).config.stateDir
      assert.notEqual(stateA, stateB)
      for (const dir of [stateA, stateB]) {
        assert.ok(existsSync(join(dir, dirOf)), `${kind} keeps its state in ${dir}/${dirOf}`)
        assert.ok(existsSync(join(dir, 'tmp')) && existsSync(join(dir, 'work')), `${dir} has its own TMPDIR and working directory`)
      }
    }
    // Codex's config names the account's own endpoint and key variable, nobody else's
    const toml = readFileSync(join(handle('codex-a').config.stateDir, '.codex', 'config.toml'), 'utf8')
    assert.match(toml, /request_max_retries = 0/)
    const settings = JSON.parse(readFileSync(join(handle('gemini-a').config.stateDir, '.gemini', 'settings.json'), 'utf8'))
    assert.equal(settings.general.maxAttempts, 1)
    assert.equal(settings.privacy.usageStatisticsEnabled, false)
    // Claude Code wrote under its CLAUDE_CONFIG_DIR, not next to it
    assert.ok(readdirSync(join(handle('claude-a').config.stateDir, '.claude')).length > 0)
  })
})

test('a CLI that is not installed or (Gemini CLI) not logged in fails its account at start with the reason; Claude Code not logged in is a 401', async (t) => {
  const { orch, client } = await start(t, {
    accounts: [
      { id: 'missing', models: ['claude-fake-1'], session: { kind: 'claude-code', command: '/nonexistent/claude' } },
      // no key, no login: Gemini CLI would start a browser sign-in and never finish its handshake
      { id: 'gemini-nologin', models: ['gemini-fake'], session: { kind: 'gemini-cli', baseUrl: 'http://127.0.0.1:9' } },
      // no key, no login: the real Claude Code says so, which is the client's 401
      { id: 'claude-nologin', models: ['claude-nologin'], session: { kind: 'claude-code', baseUrl: 'http://127.0.0.1:9', prewarm: 0 } },
      { id: 'mock', models: ['other'], session: { kind: 'mock', text: 'mock answer' } },
    ],
  })
  const missing = orch.dispatcher.accounts.find((a) => a.id === 'missing')!
  // failed from the moment the orchestrator is up: its worker's `ready` does not make it look up
  assert.equal(missing.sessionState, 'failed')
  assert.equal(missing.sessionUp, false)
  assert.match(String(missing.lastError), /nonexistent/)
  const nologin = orch.dispatcher.accounts.find((a) => a.id === 'gemini-nologin')!
  await eventually(() => nologin.sessionState === 'failed', 'the account that is not logged in is failed')
  assert.match(String(nologin.lastError), /not logged in .*agyc accounts login gemini-nologin/)
  assert.equal(nologin.childPids.size, 0, 'no CLI was started to wait for a browser')
  const refused = await apiError(client.messages.create({ model: 'claude-nologin', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] }))
  assert.equal(refused.status, 401)
  assert.equal((refused.error as { error?: { type?: string } })?.error?.type, 'authentication_error')
  assert.match(refused.message, /not logged in|login/i)
  assert.equal(orch.dispatcher.accounts.find((a) => a.id === 'claude-nologin')!.outlier.consecutive, 1, 'it counts against the account')
  const answer = await client.messages.create({ model: 'other', max_tokens: 16, messages: [{ role: 'user', content: 'hi' }] })
  assert.equal(textOf(answer), 'mock answer')
})

test('agyc accounts login runs the CLI login inside each account\'s own state; validate warns until it is done', async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'agyc-login-'))
  t.after(() => rmSync(dir, { recursive: true, force: true }))
  const probe = fileURLToPath(new URL('./fixtures/login-probe.mjs', import.meta.url))
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify({
    accounts: [
      { id: 'one', session: { kind: 'claude-code', command: probe } },
      { id: 'two', session: { kind: 'claude-code', command: probe } },
      { id: 'gone', session: { kind: 'codex', command: join(dir, 'no-such-codex'), apiKey: { fromEnv: 'AGYC_TEST_CODEX_A' } } },
    ],
  }))
  const before = await agyc(['validate', file])
  assert.equal(before.code, 0, 'warnings are not errors')
  assert.match(before.stderr, /^warning: accounts\[0\] \(one\): claude-code is not logged in/m)
  assert.match(before.stderr, /^warning: accounts\[1\] \(two\): claude-code is not logged in/m)
  assert.match(before.stderr, /^warning: accounts\[2\] \(gone\): codex: command ".*no-such-codex" was not found/m)
  assert.doesNotMatch(before.stderr, /\(gone\): codex is not logged in/, 'an account with an API key needs no login')

  const login = await agyc(['accounts', 'login', 'one', '--config', file], { AGYC_TEST_PARENT_SECRET: 'x' })
  assert.equal(login.code, 0, login.stderr)
  const seen = JSON.parse(/^probe (.*)$/m.exec(login.stdout)![1])
  const state = join(dir, '.state', 'one')
  assert.deepEqual(seen.args, ['auth', 'login'])
  assert.equal(seen.HOME, state)
  assert.equal(seen.CLAUDE_CONFIG_DIR, join(state, '.claude'))
  assert.equal(seen.TMPDIR, join(state, 'tmp'))
  assert.equal(seen.cwd, join(state, 'work'))
  assert.equal(seen.DISABLE_TELEMETRY, '1')
  assert.deepEqual(seen.leaked, [], 'the orchestrator\'s environment does not reach the CLI')
  assert.ok(existsSync(join(state, '.claude', '.credentials.json')))
  assert.equal(existsSync(join(dir, '.state', 'two', '.claude')), false, 'the other account is untouched')

  const after = await agyc(['validate', file])
  assert.equal(after.code, 0)
  assert.doesNotMatch(after.stderr, /\(one\)/)
  assert.match(after.stderr, /\(two\): claude-code is not logged in/)
  assert.equal((await agyc(['accounts', 'login', 'nobody', '--config', file])).code, 2)
})

test('config.agents.example.json validates and has one account of each preset', async () => {
  const ran = await agyc(['validate', fileURLToPath(new URL('../config.agents.example.json', import.meta.url))])
  assert.equal(ran.code, 0, ran.stderr)
  const config = JSON.parse(readFileSync(new URL('../config.agents.example.json', import.meta.url), 'utf8')) as { accounts: { session: { kind: string } }[] }
  assert.deepEqual(config.accounts.map((a) => a.session.kind).sort(), ['claude-code', 'codex', 'gemini-cli'])
})
