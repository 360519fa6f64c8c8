/**
 * The benchmark must not rot: a quick run (a few seconds of load, no thresholds) produces a report in which every arm
 * is present, measured or skipped with its reason. Figures are not asserted: the machines are shared and noisy.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs'
import { availableParallelism, tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { test } from 'node:test'
import type { Report } from '../bench/report.ts'

const ROOT = fileURLToPath(new URL('..', import.meta.url))
const ARMS = ['strict', 'baseline', 'orch-1', 'orch-8', 'orch-30', 'orch-8-unpinned', 'http-proxy', 'http-proxy-1', 'node-proxy', 'nginx', 'portkey', 'memory-30', 'memory-100', 'exec']

test('agyc bench --quick reports every arm, each measured or skipped with a reason', { timeout: 240_000 }, async (t) => {
  const out = mkdtempSync(join(tmpdir(), 'agyc-bench-smoke-'))
  t.after(() => rmSync(out, { recursive: true, force: true }))
  // through the CLI, as `agyc bench` (which runs bench/run.ts, as `npm run bench` does); its own process group, so
  // that a run past its time can be stopped whole
  const docs = join(out, 'performance.md') // a quick run writes the docs page only when told where
  const child = spawn(join(ROOT, 'bin/agyc'), ['bench', '--quick', '--out', out, '--docs', docs], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], detached: true })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => { stdout += d })
  child.stderr.setEncoding('utf8').on('data', (d: string) => { stderr += d })
  const timer = setTimeout(() => process.kill(-child.pid!, 'SIGINT'), 200_000)
  const code = await new Promise<number | null>((resolve) => child.once('exit', resolve))
  clearTimeout(timer)
  assert.equal(code, 0, stderr.slice(-2000))

  const report = JSON.parse(readFileSync(join(out, 'latest.json'), 'utf8')) as Report
  assert.equal(report.quick, true)
  assert.deepEqual(report.targets, [], 'a quick run judges no target')
  assert.deepEqual(report.arms.map((a) => a.arm), ARMS)
  for (const arm of report.arms) {
    if (arm.status === 'skipped') assert.ok(arm.reason && arm.reason.length > 0, `${arm.arm} is skipped without a reason`)
    else assert.equal(arm.status, 'ran')
  }
  // the arms that need nothing outside this repository always run and answer every request
  for (const name of ['strict', 'baseline', 'orch-1', 'orch-8', 'orch-30', 'node-proxy', 'memory-30', 'memory-100']) {
    assert.equal(report.arms.find((a) => a.arm === name)?.status, 'ran', `${name} did not run`)
  }
  for (const section of ['json', 'sse'] as const) {
    for (const arm of ['strict', 'baseline', 'orch-1', 'orch-8', 'orch-30']) {
      const cell = report.cells.find((c) => c.section === section && c.arm === arm && c.tool === 'autocannon')
      assert.ok(cell, `no ${section} figures for ${arm}`)
      assert.ok(cell.median.requests > 0, `${section} ${arm} answered nothing`)
      assert.equal(cell.median.errors + cell.median.non2xx, 0, `${section} ${arm} had errors`)
    }
  }
  for (const arm of ['strict', 'baseline', 'orch-8']) {
    assert.ok(report.cells.some((c) => c.tool === 'ttfb' && c.arm === arm && c.median.ttfb), `no time-to-first-byte figures for ${arm}`)
  }
  // CPU per request per thread: the baselines spend theirs on the main thread alone, the orchestrator in workers too
  const json = (arm: string) => report.cells.find((c) => c.section === 'json' && c.arm === arm && c.tool === 'autocannon')!
  for (const arm of ['strict', 'baseline', 'orch-8']) assert.ok(json(arm).cpuSplit.main > 0, `${arm}: no main-thread CPU per request`)
  assert.equal(json('strict').cpuSplit.workers, 0, 'the strict baseline has no worker thread')
  assert.ok(json('orch-8').cpuSplit.workers > 0, 'orch-8: no worker CPU per request')
  // the thread names are counted as bench/threads.ts says: exactly one worker thread per account, one main thread
  const kinds = (arm: string) => {
    const names = report.threads.find((t) => t.arm === arm)?.names ?? []
    return (kind: string) => names.filter((n) => n.kind === kind).reduce((sum, n) => sum + n.count, 0)
  }
  assert.equal(kinds('orch-8')('workers'), 8, `orch-8's threads: ${JSON.stringify(report.threads.find((t) => t.arm === 'orch-8'))}`)
  assert.equal(kinds('orch-8')('main'), 1)
  assert.equal(kinds('strict')('workers'), 0, `strict's threads: ${JSON.stringify(report.threads.find((t) => t.arm === 'strict'))}`)
  // the unpinned arm needs a core for the load generator and more than one for the orchestrator
  const unpinned = report.arms.find((a) => a.arm === 'orch-8-unpinned')!
  if (availableParallelism() < 4) assert.match(unpinned.reason ?? '', /has \d+ cores/, 'the skip says why')
  else assert.ok(report.cells.some((c) => c.arm === 'orch-8 unpinned' && c.median.requests > 0), 'the unpinned arm answered nothing')
  // every orchestrator row against both yardsticks; the tables also went into the docs page, between its markers
  assert.match(stdout, /\| vs strict \| vs mock baseline \|/)
  assert.match(stdout, /^\| orch-8 \| 16 \| [\d,]+ \| \d+\.\d\d \| \d+\.\d\d \|/m)
  const page = readFileSync(docs, 'utf8')
  assert.ok(page.includes(`<!-- bench:begin -->\n\n${stdout.trim()}\n\n<!-- bench:end -->`), 'docs page holds the report between its markers')
  // each account count with the default config (lazyWorkers "auto": mock accounts parked) and with every worker started
  assert.deepEqual(report.memory.map((m) => m.workers).sort(), ['default (auto)', 'default (auto)', 'eager', 'eager'])
  // the load arms woke every parked account before measuring (bench/run.ts, wake)
  assert.doesNotMatch(stderr, /still parked after the warm-up/)
  // the markdown went to stdout and to the results folder
  assert.match(stdout, /### Arms/)
  assert.equal(readFileSync(join(out, 'latest.md'), 'utf8').trim(), stdout.trim())
})

test('agyc bench stopped with SIGTERM stops its servers and leaves no scratch directory', { timeout: 60_000 }, async (t) => {
  const tmp = mkdtempSync(join(tmpdir(), 'agyc-bench-term-'))
  t.after(() => rmSync(tmp, { recursive: true, force: true }))
  const child = spawn(join(ROOT, 'bin/agyc'), ['bench', '--quick', '--out', join(tmp, 'out')], {
    cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'], env: { ...process.env, TMPDIR: tmp },
  })
  t.after(() => { if (child.exitCode === null) child.kill('SIGKILL') })
  let stderr = ''
  const scratch = await new Promise<string>((resolve, reject) => {
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
      const m = /scratch (\S+)/.exec(stderr)
      if (m) resolve(m[1])
    })
    child.once('exit', () => reject(new Error(`exited before its scratch line: ${stderr}`)))
  })
  assert.ok(scratch.startsWith(tmp) && existsSync(scratch), scratch)
  // the processes of this run: every one inherits its TMPDIR
  const ours = (): number[] => readdirSync('/proc').filter((n) => /^\d+$/.test(n) && n !== String(child.pid)).filter((pid) => {
    try { return readFileSync(`/proc/${pid}/environ`, 'utf8').split('\0').includes(`TMPDIR=${tmp}`) } catch { return false }
  }).map(Number)
  await new Promise((r) => setTimeout(r, 1_500)) // a server or two running, or starting
  assert.ok(ours().length > 0, 'the bench runs processes of its own')
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  child.kill('SIGTERM') // agyc alone, not its group: it must pass the signal on
  assert.equal(await exited, 143)
  assert.deepEqual(ours(), [], 'no process of the run is left, whether it was up or still starting')
  assert.equal(existsSync(scratch), false, 'the scratch directory is gone')
  assert.deepEqual(readdirSync(tmp).filter((n) => n.startsWith('agyc-bench-')), [])
})
