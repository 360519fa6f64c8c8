/**
 * Real third-party servers for the fleet tests (issue 17): Debian's `redis-server` and `nginx`, each started on
 * 127.0.0.1 on a free port in its own temp directory, stopped by PID. Nothing outlives the test: `stop()` waits for the
 * process to exit and removes the directory, and an `exit` hook kills by PID whatever a crashed test left running.
 * In CI (`CI` set) a missing binary fails the test (`.ci/run` installs both); elsewhere the test is skipped, loudly.
 */
import { spawn, type ChildProcess } from 'node:child_process'
import { once } from 'node:events'
import { existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { connect } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { freePort } from './orchestrator.ts'

export const REDIS_SERVER = process.env.REDIS_SERVER_PATH ?? '/usr/bin/redis-server'
export const NGINX = process.env.NGINX_PATH ?? '/usr/sbin/nginx'

/**
 * `{ skip }` for a test that needs these binaries: skipped (with a warning) when one is missing outside CI; in CI the
 * test runs and `assertInstalled` fails it, so absence is a broken CI, never a silent skip.
 */
export function needs(...binaries: string[]): { skip: string | false } {
  const missing = binaries.filter((b) => !existsSync(b))
  if (missing.length === 0 || process.env.CI) return { skip: false }
  process.stderr.write(`\n!!! ${missing.join(', ')} missing: test SKIPPED (apt-get install -y redis-server nginx). In CI it fails.\n\n`)
  return { skip: `${missing.join(', ')} missing` }
}

export function assertInstalled(...binaries: string[]): void {
  const missing = binaries.filter((b) => !existsSync(b))
  if (missing.length > 0) throw new Error(`${missing.join(', ')} missing: CI must install Debian's redis-server and nginx (.ci/run does)`)
}

// Last resort for a test that dies between start and stop: kill by PID, synchronously, as the process exits.
const live = new Set<ChildProcess>()
process.on('exit', () => {
  for (const child of live) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL')
})

interface Spawned { child: ChildProcess; output: () => string; exited: Promise<unknown> }

function spawnServer(command: string, args: string[], cwd: string): Spawned {
  const child = spawn(command, args, { cwd, stdio: ['ignore', 'pipe', 'pipe'] })
  let out = ''
  child.stdout!.on('data', (d: Buffer) => { out += d })
  child.stderr!.on('data', (d: Buffer) => { out += d })
  live.add(child)
  const exited = once(child, 'exit').catch(() => {}).finally(() => live.delete(child))
  return { child, output: () => out, exited }
}

async function stopChild(s: Spawned, signal: NodeJS.Signals): Promise<void> {
  if (s.child.exitCode === null && s.child.signalCode === null) s.child.kill(signal)
  await s.exited
}

/** Resolves when something accepts TCP on the port; rejects if `exited` settles first or after `ms`. */
async function waitForPort(port: number, exited: Promise<unknown>, what: () => string, ms = 10_000): Promise<void> {
  let gone = false
  void exited.then(() => { gone = true })
  const deadline = Date.now() + ms
  while (Date.now() < deadline) {
    if (gone) throw new Error(`exited before listening:\n${what()}`)
    const ok = await new Promise<boolean>((resolve) => {
      const socket = connect(port, '127.0.0.1')
      socket.once('connect', () => { socket.destroy(); resolve(true) })
      socket.once('error', () => resolve(false))
    })
    if (ok) return
    await new Promise((r) => setTimeout(r, 20))
  }
  throw new Error(`not listening on ${port} after ${ms} ms:\n${what()}`)
}

export interface RedisServer {
  readonly url: string
  readonly port: number
  /** the running server's PID (a new one after `restart`) */
  readonly pid: number
  /** SIGTERM (or `signal`) by PID, and wait for the exit; the port stays reserved for `restart` */
  kill(signal?: NodeJS.Signals): Promise<void>
  /** start again on the same port (empty: no persistence); for "Redis stopped, then restarted" */
  restart(): Promise<void>
  /** kill and remove the directory */
  stop(): Promise<void>
}

/** A throwaway redis-server: no persistence, no config file, loopback only. */
export async function startRedis(): Promise<RedisServer> {
  assertInstalled(REDIS_SERVER)
  const dir = mkdtempSync(join(tmpdir(), 'agyc-redis-'))
  let port = 0
  let running: Spawned | undefined
  const launch = async (): Promise<void> => {
    const s = spawnServer(REDIS_SERVER, [
      '--port', String(port), '--bind', '127.0.0.1', '--dir', dir, '--save', '', '--appendonly', 'no',
      '--daemonize', 'no', '--loglevel', 'warning',
    ], dir)
    running = s
    await waitForPort(port, s.exited, s.output)
  }
  // a free port can be taken between the probe and the bind: try a few
  for (let attempt = 0; ; attempt++) {
    port = await freePort()
    try {
      await launch()
      break
    } catch (err) {
      if (running) await stopChild(running, 'SIGKILL')
      if (attempt === 2) {
        rmSync(dir, { recursive: true, force: true })
        throw err
      }
    }
  }
  const kill = async (signal: NodeJS.Signals = 'SIGTERM'): Promise<void> => {
    if (running) await stopChild(running, signal)
  }
  return {
    url: `redis://127.0.0.1:${port}`,
    port,
    get pid() { return running?.child.pid ?? 0 },
    kill,
    async restart() {
      await kill('SIGKILL')
      await launch()
    },
    async stop() {
      await kill('SIGKILL')
      rmSync(dir, { recursive: true, force: true })
    },
  }
}

export interface NginxOptions {
  /** ports of the orchestrator nodes on 127.0.0.1 */
  upstreams: readonly number[]
  balance?: 'least_conn' | 'round-robin'
}

/**
 * An nginx config for a fleet on 127.0.0.1. Streams pass through as they come (`proxy_buffering off`: SSE), request
 * bodies too; timeouts match the orchestrator's own 600 s request deadline. A node that refuses the connection is
 * skipped for 2 s and the request goes to the next (`proxy_next_upstream error timeout`: only failures before the
 * request was sent, so a POST is never sent twice). `master_process off`: one process, so stopping it by PID leaves no
 * worker behind (nginx's development mode; fine for a test, not for production).
 */
export function nginxConfig(options: NginxOptions & { port: number; dir: string }): string {
  const { dir } = options
  const servers = options.upstreams.map((p) => `    server 127.0.0.1:${p} max_fails=1 fail_timeout=2s;`).join('\n')
  return `daemon off;
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
  upstream fleet {
${options.balance === 'round-robin' ? '' : '    least_conn;\n'}${servers}
    keepalive 64;
  }
  server {
    listen 127.0.0.1:${options.port};
    client_max_body_size 32m;
    location / {
      proxy_pass http://fleet;
      proxy_http_version 1.1;
      proxy_set_header Connection "";
      proxy_buffering off;
      proxy_request_buffering off;
      proxy_connect_timeout 2s;
      proxy_send_timeout 600s;
      proxy_read_timeout 600s;
      proxy_next_upstream error timeout;
    }
  }
}
`
}

export interface Nginx { readonly url: string; readonly pid: number; readonly config: string; stop(): Promise<void> }

export async function startNginx(options: NginxOptions): Promise<Nginx> {
  assertInstalled(NGINX)
  const dir = mkdtempSync(join(tmpdir(), 'agyc-nginx-'))
  for (let attempt = 0; ; attempt++) {
    const port = await freePort()
    const config = nginxConfig({ ...options, port, dir })
    writeFileSync(join(dir, 'nginx.conf'), config)
    // -e: the error log before the config is read (else nginx first opens /var/log/nginx/error.log)
    const s = spawnServer(NGINX, ['-p', dir, '-c', join(dir, 'nginx.conf'), '-e', join(dir, 'error.log')], dir)
    try {
      await waitForPort(port, s.exited, s.output)
    } catch (err) {
      await stopChild(s, 'SIGKILL')
      if (attempt < 2) continue
      rmSync(dir, { recursive: true, force: true })
      throw err
    }
    return {
      url: `http://127.0.0.1:${port}`,
      pid: s.child.pid ?? 0,
      config,
      async stop() {
        await stopChild(s, 'SIGKILL')
        rmSync(dir, { recursive: true, force: true })
      },
    }
  }
}
