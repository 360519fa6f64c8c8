/**
 * A fleet for the fleet tests (issue 17): orchestrator nodes as separate processes (`node src/main.ts --config`, as a
 * user runs them), one real redis-server, and nginx started from docs/nginx.conf itself with only its ports changed.
 * Everything on 127.0.0.1, stopped by PID in `t.after`; a node can be SIGKILLed on purpose.
 */
import assert from 'node:assert/strict'
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { freePort } from './orchestrator.ts'
import { ROOT } from './process.ts'
import { NGINX, startRedis, type RedisServer } from './servers.ts'

export const SECRET = 'fleet-test-secret-0123456789abcdefghijklmnop'

export interface FleetNode {
  readonly nodeId: string
  readonly url: string
  readonly port: number
  readonly child: ChildProcess
  /** the tail of its stdout and stderr (log lines) */
  output(): string
  /** SIGKILL: nothing left behind but its Redis entries, which expire */
  kill(): Promise<void>
  /** SIGTERM and wait (SIGKILL after 5 s) */
  stop(): Promise<void>
}

export interface NodeOptions {
  nodeId: string
  redis: string
  keyPrefix: string
  accounts: unknown[]
  dispatcher?: Record<string, unknown>
  cluster?: Record<string, unknown>
  server?: Record<string, unknown>
  health?: Record<string, unknown>
  env?: Record<string, string>
  secret?: string
}

const live = new Set<ChildProcess>()
process.on('exit', () => { for (const c of live) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL') })

export async function startNode(t: TestContext, options: NodeOptions): Promise<FleetNode> {
  const port = await freePort()
  const dir = mkdtempSync(join(tmpdir(), `agyc-${options.nodeId}-`))
  const config = {
    server: { host: '127.0.0.1', port, shutdownGraceMs: 1_000, ...options.server },
    log: { level: 'info' },
    stateRoot: dir,
    dispatcher: options.dispatcher ?? {},
    health: options.health ?? {},
    cluster: {
      redis: options.redis, nodeId: options.nodeId, advertiseUrl: `http://127.0.0.1:${port}`, keyPrefix: options.keyPrefix,
      secret: { fromEnv: 'AGYC_CLUSTER_SECRET' }, heartbeatMs: 250, nodeTtlMs: 1_000, ...options.cluster,
    },
    accounts: options.accounts,
  }
  const file = join(dir, 'config.json')
  writeFileSync(file, JSON.stringify(config, null, 2))
  const child = spawn(process.execPath, ['src/main.ts', '--config', file], {
    cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, AGYC_CLUSTER_SECRET: options.secret ?? SECRET, ...options.env },
  })
  live.add(child)
  let out = ''
  const keep = (d: Buffer): void => {
    out += d
    if (out.length > 256 * 1024) out = out.slice(-128 * 1024) // a tail is enough to debug a failure
  }
  const { promise: listening, resolve, reject } = Promise.withResolvers<void>()
  child.stdout!.on('data', (d: Buffer) => {
    keep(d)
    if (out.includes('"msg":"listening"')) resolve()
  })
  child.stderr!.on('data', keep)
  const exited = once(child, 'exit').finally(() => live.delete(child))
  void exited.then(() => reject(new Error(`${options.nodeId} exited before listening:\n${out}`)))
  const stop = async (signal: NodeJS.Signals): Promise<void> => {
    if (child.exitCode !== null || child.signalCode !== null) return
    child.kill(signal)
    const timer = setTimeout(() => child.kill('SIGKILL'), 5_000)
    await exited
    clearTimeout(timer)
  }
  t.after(async () => {
    await stop('SIGTERM')
    rmSync(dir, { recursive: true, force: true })
  })
  await listening
  return {
    nodeId: options.nodeId, url: `http://127.0.0.1:${port}`, port, child, output: () => out,
    kill: () => stop('SIGKILL'),
    stop: () => stop('SIGTERM'),
  }
}

export async function redisFor(t: TestContext): Promise<RedisServer> {
  const redis = await startRedis()
  t.after(() => redis.stop())
  return redis
}

let prefixes = 0
export const freshPrefix = (): string => `fleet${process.pid}-${++prefixes}:`

/** Until every node lists `n` live nodes (its /admin/cluster). */
export async function untilMembers(nodes: readonly FleetNode[], n: number, ms = 10_000): Promise<void> {
  const deadline = Date.now() + ms
  for (;;) {
    const counts = await Promise.all(nodes.map(async (node) => ((await (await fetch(`${node.url}/admin/cluster`)).json()) as { nodes: unknown[] }).nodes.length))
    if (counts.every((c) => c === n)) return
    if (Date.now() > deadline) assert.fail(`nodes never all saw ${n} members (they see ${counts.join(', ')})`)
    await new Promise((r) => setTimeout(r, 50))
  }
}

export interface RunningNginx { readonly url: string; readonly pid: number; stop(): Promise<void> }

/**
 * nginx from docs/nginx.conf as shipped, with its ports replaced: the `server 127.0.0.1:808x` lines become the
 * nodes', `listen` a free port. The file is a conf.d snippet; around it goes the least a main config needs to run
 * unprivileged in a temp directory (pid, logs, temp paths) and in the foreground, one process (stopped by PID).
 */
export async function startFleetNginx(t: TestContext, ports: readonly number[]): Promise<RunningNginx> {
  const shipped = readFileSync(join(ROOT, 'docs/nginx.conf'), 'utf8')
  const dir = mkdtempSync(join(tmpdir(), 'agyc-fleet-nginx-'))
  const port = await freePort()
  const servers = shipped.match(/^\s*server 127\.0\.0\.1:\d+ .*;$/gm)
  assert.ok(servers && servers.length > 0, 'docs/nginx.conf lists its nodes as "server 127.0.0.1:PORT …;"')
  const options = servers[0].replace(/^\s*server 127\.0\.0\.1:\d+/, '')
  let snippet = shipped.replace(/^\s*server 127\.0\.0\.1:\d+ .*;\n/gm, '')
  snippet = snippet.replace(/(upstream agyc_fleet \{\n(?:.*\n)*?\s*least_conn;\n)/, (m) => m + ports.map((p) => `    server 127.0.0.1:${p}${options}\n`).join(''))
  assert.match(snippet, /listen 127\.0\.0\.1:\d+;/)
  snippet = snippet.replace(/listen 127\.0\.0\.1:\d+;/, `listen 127.0.0.1:${port};`)
  writeFileSync(join(dir, 'agyc.conf'), snippet)
  writeFileSync(join(dir, 'nginx.conf'), `daemon off;
master_process off;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path ${dir}/client_body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/agyc.conf;
}
`)
  const child = spawn(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], { stdio: ['ignore', 'pipe', 'pipe'] })
  live.add(child)
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d })
  child.stderr!.on('data', (d: Buffer) => { out += d })
  const exited = once(child, 'exit').finally(() => live.delete(child))
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
    await exited
    rmSync(dir, { recursive: true, force: true })
  }
  t.after(stop)
  const deadline = Date.now() + 10_000
  for (;;) {
    if (child.exitCode !== null) assert.fail(`nginx exited: ${out}${readFileSync(join(dir, 'error.log'), 'utf8')}`)
    try {
      await fetch(`http://127.0.0.1:${port}/healthz`)
      break
    } catch {
      if (Date.now() > deadline) assert.fail(`nginx never listened: ${out}`)
      await new Promise((r) => setTimeout(r, 20))
    }
  }
  return { url: `http://127.0.0.1:${port}`, pid: child.pid ?? 0, stop }
}

/** Mock accounts named after their node (`n1-a`, `n1-b`): an answer's x-agyc-account tells which node served it. */
export const mockAccountsOf = (nodeId: string, n: number, session: Record<string, unknown> = {}, extra: Record<string, unknown> = {}): unknown[] =>
  Array.from({ length: n }, (_, i) => ({ id: `${nodeId}-${String.fromCharCode(97 + i)}`, maxConcurrency: 4, session: { kind: 'mock', ...session }, ...extra }))
