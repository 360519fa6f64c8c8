/** `agyc bench [ARGS…]`: the benchmark (bench/run.ts, as `npm run bench`), on this same Node, arguments passed on. */
import { spawn } from 'node:child_process'
import { existsSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export const benchUsage = `usage: agyc bench [ARGS…]

Runs the benchmark (bench/run.ts, the same as npm run bench) and passes ARGS to it;
agyc bench -- --help shows the benchmark's own options.
`

export function runBench(argv: string[]): void {
  if (argv[0] === '--help' || argv[0] === '-h') {
    process.stdout.write(benchUsage)
    process.exit(0)
  }
  const args = argv[0] === '--' ? argv.slice(1) : argv
  const script = fileURLToPath(new URL('../../bench/run.ts', import.meta.url))
  if (!existsSync(script)) {
    process.stderr.write(`${script} is missing: the benchmark is not part of this checkout\n`)
    process.exit(1)
  }
  const child = spawn(process.execPath, [script, ...args], { stdio: 'inherit' })
  // Ctrl-C reaches the whole foreground group; the benchmark decides how to stop. A SIGTERM is sent to us alone: pass
  // it on, so that the benchmark stops its servers and removes its scratch directory, and exit when it has
  process.on('SIGINT', () => {})
  process.on('SIGTERM', () => child.kill('SIGTERM'))
  child.on('exit', (code, signal) => process.exit(code ?? (signal ? 1 : 0)))
}
