/**
 * The servers under test, each a separate process pinned to the server core: the two bare baselines (strict, mock), a
 * real orchestrator (`node src/main.ts --config <generated>`), Node's floor for a proxy (bench/node-proxy.ts), nginx
 * (Debian's package) and Portkey's gateway (npm), the last three proxying the mock baseline. Each start function answers a running server or a reason it cannot run.
 */
import { spawnSync } from 'node:child_process'
import { existsSync, mkdirSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { Session } from '../src/config/schema.ts'
import { SERVER_CORE, canConnect, freePort, processTree, readText, startProc, waitFor, type Proc } from './procs.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const NODE = process.execPath

export interface Running {
  readonly name: string
  /** where load goes, including the path */
  readonly url: string
  /** extra request headers this server needs (Portkey's routing headers) */
  readonly headers: Record<string, string>
  readonly proc: Proc
  /** spawn → accepting requests, ms (wall clock, as a user sees it) */
  readonly readyMs: number
  /** what the server itself logged as its start-up time, when it logs one */
  readonly loggedReadyMs?: number
  /** an orchestrator's `GET /admin/accounts` (the other servers have none) */
  readonly accountsUrl?: string
  pids(): number[]
  stop(): Promise<void>
}

export type Started = Running | { skipped: string }

function running(name: string, url: string, proc: Proc, readyMs: number, extra: Partial<Running> = {}): Running {
  return {
    name, url, proc, readyMs, headers: {}, ...extra,
    pids: () => processTree(proc.pid),
    stop: () => proc.stop(),
  }
}

/**
 * A baseline server: `mock` (bench/baseline.ts: the mock session's work per request; also the proxies' upstream) or
 * `strict` (bench/strict-baseline.ts: one JSON.parse and replayed bytes).
 */
export async function startBaseline(dir: string, name = 'baseline', kind: 'mock' | 'strict' = 'mock'): Promise<Running> {
  const logFile = join(dir, `${name}.log`)
  const script = kind === 'strict' ? 'bench/strict-baseline.ts' : 'bench/baseline.ts'
  const proc = startProc(SERVER_CORE, NODE, [join(ROOT, script)], { logFile })
  const port = await waitFor(() => {
    const match = /\{"port":(\d+)\}/.exec(readText(logFile))
    if (match) return Number(match[1])
    if (proc.child.exitCode !== null) throw new Error(`${name} exited: ${readText(logFile).slice(-400)}`)
    return undefined
  }, `${name} to listen`)
  return running(name, `http://127.0.0.1:${port}/v1/messages`, proc, performance.now() - proc.startedAt)
}

/** Node's floor for a proxy (bench/node-proxy.ts): node:http in front of `upstreamPort` through undici. */
export async function startNodeProxy(dir: string, upstreamPort: number): Promise<Running> {
  const logFile = join(dir, 'node-proxy.log')
  const proc = startProc(SERVER_CORE, NODE, [join(ROOT, 'bench/node-proxy.ts'), '--upstream', `http://127.0.0.1:${upstreamPort}`], { logFile })
  const port = await waitFor(() => {
    const match = /\{"port":(\d+)\}/.exec(readText(logFile))
    if (match) return Number(match[1])
    if (proc.child.exitCode !== null) throw new Error(`node-proxy exited: ${readText(logFile).slice(-400)}`)
    return undefined
  }, 'node-proxy to listen')
  return running('node-proxy', `http://127.0.0.1:${port}/v1/messages`, proc, performance.now() - proc.startedAt)
}

export interface OrchestratorOptions {
  accounts: number
  session: Record<string, unknown>
  /** node flags for the server process (`--cpu-prof`, …) */
  nodeFlags?: string[]
  /** top-level config sections merged into the generated config (`{ dispatcher: {…} }`) */
  extra?: Record<string, unknown>
  /** another checkout to run instead of this one (`--against`: two commits in one run) */
  root?: string
  /** the cores to run on (`taskset -c` list); the server core by default, more for the unpinned arm */
  cores?: string
}

export const BENCH_MAX_CONCURRENCY = 16

/** Whether this build's config schema knows a session kind (the proxy arm needs `http`). */
export function sessionKindMissing(session: Record<string, unknown>): string | undefined {
  const parsed = Session.safeParse(session)
  if (parsed.success) return undefined
  return `session kind "${String(session.kind)}" is not available in this build (config schema: ${parsed.error.issues[0]?.message ?? 'rejected'})`
}

export async function startOrchestrator(dir: string, name: string, options: OrchestratorOptions): Promise<Started> {
  const missing = sessionKindMissing(options.session)
  if (missing) return { skipped: missing }
  const config = {
    server: { host: '127.0.0.1', port: 0 },
    log: { level: 'info' },
    stateRoot: join(dir, `state-${name}`),
    accounts: Array.from({ length: options.accounts }, (_, i) => ({
      id: `acc${String(i + 1).padStart(3, '0')}`, maxConcurrency: BENCH_MAX_CONCURRENCY, session: options.session,
    })),
    ...options.extra,
  }
  const configFile = join(dir, `${name}.config.json`)
  writeFileSync(configFile, JSON.stringify(config, null, 2))
  // the per-request log lines go to a file, as they would to journald: their cost is part of the server's
  const logFile = join(dir, `${name}.log`)
  const root = options.root ?? ROOT
  const proc = startProc(options.cores ?? SERVER_CORE, NODE, [...(options.nodeFlags ?? []), join(root, 'src/main.ts'), '--config', configFile], { logFile, cwd: root })
  const line = await waitFor(() => {
    const text = readText(logFile)
    const i = text.indexOf('"msg":"listening"')
    if (i >= 0) return text.slice(text.lastIndexOf('\n', i) + 1, text.indexOf('\n', i))
    if (proc.child.exitCode !== null) throw new Error(`orchestrator ${name} exited: ${text.slice(-600)}`)
    return undefined
  }, `orchestrator ${name} to listen`, 120_000)
  const readyMs = performance.now() - proc.startedAt
  const logged = JSON.parse(line) as { url: string; readyMs: number }
  return running(name, `${logged.url}/v1/messages`, proc, readyMs, { loggedReadyMs: logged.readyMs, accountsUrl: `${logged.url}/admin/accounts` })
}

const NGINX_CANDIDATES = ['/usr/sbin/nginx', '/usr/bin/nginx', '/usr/local/sbin/nginx', '/usr/local/bin/nginx']

export function nginxBinary(): string | undefined {
  return NGINX_CANDIDATES.find((p) => existsSync(p))
}

export async function startNginx(dir: string, upstreamPort: number): Promise<Started> {
  const bin = nginxBinary()
  if (!bin) return { skipped: 'nginx is not installed (Debian: apt-get install -y nginx-light)' }
  const prefix = join(dir, 'nginx')
  mkdirSync(join(prefix, 'logs'), { recursive: true })
  const port = await freePort()
  const conf = join(prefix, 'nginx.conf')
  const asRoot = process.getuid?.() === 0
  // one worker (the server core is one core), keep-alive to the upstream, no access log: nginx at its best
  writeFileSync(conf, `${asRoot ? 'user root;\n' : ''}worker_processes 1;
daemon off;
pid ${prefix}/nginx.pid;
error_log ${prefix}/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${prefix}/body;
  proxy_temp_path ${prefix}/proxy;
  fastcgi_temp_path ${prefix}/fastcgi;
  uwsgi_temp_path ${prefix}/uwsgi;
  scgi_temp_path ${prefix}/scgi;
  keepalive_requests 100000;
  upstream baseline { server 127.0.0.1:${upstreamPort}; keepalive 128; keepalive_requests 100000; }
  server {
    listen 127.0.0.1:${port};
    location / {
      proxy_pass http://baseline;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
    }
  }
}
`)
  const test = spawnSync(bin, ['-t', '-q', '-p', prefix, '-c', conf, '-e', join(prefix, 'logs/error.log')], { encoding: 'utf8' })
  if (test.status !== 0) return { skipped: `nginx rejected the generated config: ${(test.stderr || test.stdout).trim().slice(-300)}` }
  const proc = startProc(SERVER_CORE, bin, ['-p', prefix, '-c', conf, '-e', join(prefix, 'logs/error.log')], { logFile: join(dir, 'nginx.log') })
  await waitFor(async () => (await canConnect(port)) || undefined, 'nginx to listen', 10_000)
  return running('nginx', `http://127.0.0.1:${port}/v1/messages`, proc, performance.now() - proc.startedAt)
}

const PORTKEY = join(ROOT, 'node_modules/@portkey-ai/gateway/build/start-server.js')

export async function startPortkey(dir: string, upstreamPort: number): Promise<Started> {
  if (!existsSync(PORTKEY)) return { skipped: '@portkey-ai/gateway is not installed (npm ci installs it as a dev dependency)' }
  const port = await freePort()
  const proc = startProc(SERVER_CORE, NODE, [PORTKEY, `--port=${port}`, '--headless'], {
    logFile: join(dir, 'portkey.log'), env: { ...process.env, NODE_ENV: 'production' },
  })
  try {
    await waitFor(async () => {
      if (proc.child.exitCode !== null) throw new Error(`exited: ${readText(join(dir, 'portkey.log')).slice(-300)}`)
      return (await canConnect(port)) || undefined
    }, 'Portkey to listen', 30_000)
  } catch (err) {
    await proc.stop()
    return { skipped: `Portkey's gateway did not start: ${(err as Error).message}` }
  }
  // Portkey routes by header: its anthropic provider, pointed at the baseline (127.0.0.1 is a trusted custom host)
  return running('portkey', `http://127.0.0.1:${port}/v1/messages`, proc, performance.now() - proc.startedAt, {
    headers: { 'x-portkey-provider': 'anthropic', 'x-portkey-custom-host': `http://127.0.0.1:${upstreamPort}/v1`, 'x-api-key': 'bench' },
  })
}
