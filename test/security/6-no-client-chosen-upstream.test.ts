/**
 * Issue 6, point 6: nothing in a request chooses where it goes. A second local server stands in for the place an
 * attacker would like the request (and the account's credentials) sent (LiteLLM CVE-2024-6587's `api_base`); requests
 * name it in every body field, metadata field and header such a proxy might read (`api_base`, `base_url`, `x-agyc-*`,
 * `x-portkey-*`-style routing headers, `anthropic-*` look-alikes, `x-forwarded-*`), and it must never be reached. The
 * same requests go to each kind of account that could be steered: an `http` upstream (which sees only the account's key
 * and the Anthropic headers; its redirect is not followed), an `exec` child and the `claude-code` preset (whose argv,
 * environment and working directory are the config's, whatever the request says).
 */
import assert from 'node:assert/strict'
import { createServer, type IncomingHttpHeaders } from 'node:http'
import type { AddressInfo } from 'node:net'
import { readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test, type TestContext } from 'node:test'
import { execAccount, execAgent, hello, mockAccounts, rawPost, rawRequest, startSecured } from './helper.ts'

const UPSTREAM_KEY = 'sk-account-own-key-0123456789'
process.env.AGYC_SEC6_UPSTREAM_KEY = UPSTREAM_KEY
const claudeStandIn = new URL('../fixtures/claude-stand-in.mjs', import.meta.url).pathname

async function listen(t: TestContext, handler: Parameters<typeof createServer>[1]): Promise<string> {
  const server = createServer(handler)
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', r))
  t.after(() => new Promise<void>((r) => { server.closeAllConnections(); server.close(() => r()) }))
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`
}

/** what a request may carry to steer it: every name a proxy (LiteLLM, Portkey, …) has been known to read */
function steering(canaryUrl: string) {
  const steer = {
    api_base: canaryUrl, base_url: canaryUrl, baseURL: canaryUrl, anthropic_base_url: canaryUrl, upstream: canaryUrl,
    url: canaryUrl, endpoint: canaryUrl, proxy: canaryUrl, api_key: 'attacker-key', headers: { authorization: 'Bearer x' },
    command: ['/bin/sh', '-c', `curl ${canaryUrl}`], args: ['--evil'], env: { ANTHROPIC_BASE_URL: canaryUrl, PATH: '/tmp' },
    cwd: '/', stateDir: '/tmp', account: 'acc02', session: { kind: 'http', url: canaryUrl }, extra_body: { api_base: canaryUrl },
  }
  const headers: Record<string, string> = {
    'content-type': 'application/json', 'x-agyc-upstream': canaryUrl, 'x-agyc-account': 'acc02', 'x-agyc-command': '/bin/sh',
    'x-agyc-env': `ANTHROPIC_BASE_URL=${canaryUrl}`, 'x-api-base': canaryUrl, 'anthropic-base-url': canaryUrl,
    'x-portkey-provider': 'anthropic', 'x-portkey-custom-host': canaryUrl, 'x-portkey-config': JSON.stringify({ custom_host: canaryUrl }),
    'x-litellm-api-base': canaryUrl, 'x-forwarded-host': new URL(canaryUrl).host, 'x-forwarded-proto': 'http',
    forwarded: `host=${new URL(canaryUrl).host}`, 'x-original-url': canaryUrl, 'x-rewrite-url': canaryUrl,
    'x-api-key': 'attacker-key',
  }
  return { steer, headers }
}

test('body fields, metadata and headers naming an upstream, command or credentials are ignored; the canary is never reached', async (t) => {
  let hits = 0
  const canaryUrl = await listen(t, (_req, res) => { hits++; res.end('{}') })
  const { steer, headers } = steering(canaryUrl)
  const { url, port, orch } = await startSecured(t, { accounts: mockAccounts(2) })
  const configBefore = JSON.stringify(orch.config)
  const body = {
    ...hello, ...steer,
    metadata: { user_id: 'u', ...steer, routing: { ...steer } },
    messages: [{ role: 'user', content: `[[mock:crash]] [[mock:fail AGYC_INTERNAL]] ${canaryUrl}` }],
  }
  for (const stream of [false, true]) {
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', body: JSON.stringify({ ...body, stream }), headers })
    assert.equal(res.status, 200)
    assert.match(res.headers.get('x-agyc-account') ?? '', /^acc0[12]$/)
    const text = await res.text()
    // answered by a configured account's own session (its text cut into deltas when streamed), directives ignored
    const said = stream ? [...text.matchAll(/"text_delta","text":"([^"]*)"/g)].map((m) => m[1]).join('') : text
    assert.match(said, /Hello from acc0[12]/)
  }
  // the canary's address in an absolute-form target is refused before anything (@hono/node-server would route by it)
  assert.equal((await rawRequest(port, rawPost(`${canaryUrl}/v1/messages`, [`Host: 127.0.0.1:${port}`]))).status, 400)

  assert.equal(hits, 0, 'the canary was reached')
  assert.equal(JSON.stringify(orch.config), configBefore, 'the running config is unchanged')
  for (const account of orch.dispatcher.accounts) assert.equal(account.childPids.size, 0, 'no process was spawned')
})

test('http, exec and claude-code accounts: the request chooses no upstream, argument, variable or directory; redirects are not followed', async (t) => {
  let hits = 0
  const canaryUrl = await listen(t, (_req, res) => { hits++; res.end('{}') })
  // the http account's upstream: records what it is sent; "[[redirect]]" answers 307 to the canary
  const seen: { path: string; headers: IncomingHttpHeaders }[] = []
  const upstreamUrl = await listen(t, (req, res) => {
    let text = ''
    req.on('data', (d) => { text += d })
    req.on('end', () => {
      seen.push({ path: req.url ?? '', headers: req.headers })
      const request = JSON.parse(text) as { stream?: boolean }
      if (text.includes('[[redirect]]')) {
        res.writeHead(307, { location: `${canaryUrl}/v1/messages` })
        return res.end()
      }
      const message = { id: 'msg_up', type: 'message', role: 'assistant', model: 'm', content: [{ type: 'text', text: 'upstream says hi' }], stop_reason: 'end_turn', stop_sequence: null, usage: { input_tokens: 1, output_tokens: 1 } }
      if (!request.stream) {
        res.writeHead(200, { 'content-type': 'application/json' })
        return res.end(JSON.stringify(message))
      }
      res.writeHead(200, { 'content-type': 'text/event-stream' })
      const events = [
        { type: 'message_start', message: { ...message, content: [] } },
        { type: 'content_block_start', index: 0, content_block: { type: 'text', text: '' } },
        { type: 'content_block_delta', index: 0, delta: { type: 'text_delta', text: 'upstream says hi' } },
        { type: 'content_block_stop', index: 0 },
        { type: 'message_delta', delta: { stop_reason: 'end_turn', stop_sequence: null }, usage: { output_tokens: 1 } },
        { type: 'message_stop' },
      ]
      res.end(events.map((e) => `event: ${e.type}\ndata: ${JSON.stringify(e)}\n\n`).join(''))
    })
  })
  const { url, dir } = await startSecured(t, {
    health: { outlierDetection: false },
    accounts: [
      { id: 'http1', models: ['m-http'], session: { kind: 'http', baseUrl: upstreamUrl, apiKey: { fromEnv: 'AGYC_SEC6_UPSTREAM_KEY' } } },
      { ...execAccount('exec1', ['--record']), models: ['m-exec'] },
      {
        id: 'claude1', models: ['m-claude'],
        session: { kind: 'claude-code', command: claudeStandIn, prewarm: 0, model: 'sonnet', baseUrl: upstreamUrl, apiKey: { fromEnv: 'AGYC_SEC6_UPSTREAM_KEY' } },
      },
    ],
  })
  const { steer, headers } = steering(canaryUrl)
  const ask = async (model: string, prompt: string, stream: boolean) => {
    const body = { ...hello, ...steer, model, stream, metadata: { user_id: 'u', ...steer }, messages: [{ role: 'user', content: prompt }] }
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', body: JSON.stringify(body), headers })
    const text = await res.text()
    const said = stream ? [...text.matchAll(/"text_delta","text":("(?:[^"\\]|\\.)*")/g)].map((m) => JSON.parse(m[1]) as string).join('') : (JSON.parse(text) as { content?: { text: string }[] }).content?.[0]?.text ?? text
    return { status: res.status, account: res.headers.get('x-agyc-account'), said, text }
  }

  for (const stream of [false, true]) {
    // http: the configured upstream answers, with the account's key and only the Anthropic headers of the client
    const http = await ask('m-http', `hello ${canaryUrl}`, stream)
    assert.equal(http.status, 200, http.text)
    assert.equal(http.account, 'http1')
    assert.equal(http.said, 'upstream says hi')
    // exec: the child's argv is the config's, its environment the allowlist and its directory the state directory
    const exec = await ask('m-exec', `[[env]] ${canaryUrl}`, stream)
    assert.equal(exec.status, 200, exec.text)
    const child = JSON.parse(exec.said) as { cwd: string; env: Record<string, string> }
    assert.equal(child.cwd, join(dir, '.state', 'exec1'))
    assert.equal(child.env.PATH.split(':').includes('/tmp'), false, 'a request put /tmp on the child\'s PATH') // the checkout itself may live under /tmp
    assert.equal(JSON.stringify(child.env).includes(canaryUrl), false, 'a request put its URL in the child environment')
    const recorded = JSON.parse(readFileSync(join(dir, '.state', 'exec1', 'last-input.json'), 'utf8')) as { argv: string[] }
    assert.deepEqual(recorded.argv, ['--record'], 'the argv is the config\'s')
    // claude-code: the preset's argv and variables; the endpoint and key are the account's
    const claude = await ask('m-claude', `hi ${canaryUrl}`, stream)
    assert.equal(claude.status, 200, claude.text)
    const cli = JSON.parse(claude.said) as { argv: string[]; env: Record<string, string>; cwd: string }
    assert.deepEqual(cli.argv, ['-p', '--input-format', 'stream-json', '--output-format', 'stream-json', '--verbose', '--include-partial-messages', '--no-session-persistence', '--model', 'sonnet'])
    assert.equal(cli.env.ANTHROPIC_BASE_URL, upstreamUrl)
    assert.equal(cli.env.ANTHROPIC_API_KEY, UPSTREAM_KEY)
    assert.equal(cli.cwd, join(dir, '.state', 'claude1', 'work'))
    assert.equal(JSON.stringify(cli.env).includes(canaryUrl), false, 'a request put its URL in the CLI environment')
  }
  for (const request of seen) {
    assert.equal(request.path, '/v1/messages')
    assert.equal(request.headers['x-api-key'], UPSTREAM_KEY, 'the account key, never the client\'s')
    const names = Object.keys(request.headers)
    for (const name of names) assert.equal(/^x-(agyc|portkey|litellm|forwarded|original|rewrite|api-base)|^forwarded$|^anthropic-base-url$/.test(name), false, `the upstream was sent ${name}`)
  }

  // an upstream redirect is an error, never followed: the key does not travel to the Location
  for (const stream of [false, true]) {
    const redirected = await ask('m-http', '[[redirect]]', stream)
    assert.equal(redirected.status, 502, redirected.text)
    assert.equal(JSON.parse(redirected.text).error.type, 'api_error')
  }
  assert.equal(hits, 0, 'the canary was reached')
})

test('an exec argument that is a client\'s text alone cannot start with "-": the model or prompt would be read as an option', async (t) => {
  const { url, dir } = await startSecured(t, {
    accounts: [
      { ...execAccount('bare', ['--record', '--model', '{model}']), models: ['m-bare'], aliases: { '--dangerous': '--dangerous' } },
      { id: 'prompt', models: ['m-prompt'], session: { kind: 'exec', command: 'node', input: 'none', args: [execAgent, '--input', 'arg', '--echo', '--prompt', '{prompt}'] } },
    ],
  })
  const post = async (model: string, content: string) => {
    const res = await fetch(`${url}/v1/messages`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ ...hello, model, messages: [{ role: 'user', content }] }) })
    return { status: res.status, json: await res.json() as any }
  }
  // a model name that is an option: refused as the client's 400, before any child
  const refused = await post('--dangerous', 'hi')
  assert.equal(refused.status, 400)
  assert.equal(refused.json.error.type, 'invalid_request_error')
  // a prompt that looks like an option, with no "--" before its placeholder: refused too
  assert.equal((await post('m-prompt', '--version')).status, 400)
  assert.equal((await post('m-prompt', 'a -- b')).status, 200)
  assert.equal((await post('m-bare', 'hi')).status, 200)
  const recorded = JSON.parse(readFileSync(join(dir, '.state', 'bare', 'last-input.json'), 'utf8')) as { argv: string[] }
  assert.deepEqual(recorded.argv, ['--record', '--model', 'm-bare'])
})
