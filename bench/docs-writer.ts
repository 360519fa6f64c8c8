/**
 * Puts a run's tables into docs/performance.md, between `<!-- bench:begin -->` and `<!-- bench:end -->`, and touches
 * nothing else in the file: the prose around the tables is written by hand. Also accepts the markers the README's
 * Performance section used (`<!-- bench:results:start …-->` / `<!-- bench:results:end -->`), so the section can move
 * there as it was. A file without markers gets them appended at its end; a missing file is created with a heading,
 * the machine and how to rerun the bench.
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { dirname } from 'node:path'

export const BEGIN = '<!-- bench:begin -->'
export const END = '<!-- bench:end -->'
const LEGACY_BEGIN = '<!-- bench:results:start'
const LEGACY_END = '<!-- bench:results:end -->'

const RERUN = `\`\`\`sh
npm run bench                                    # the full run (~15 min on 2 cores): rewrites the tables below
npm run bench -- --quick                         # a smoke run of every arm in ~30 s (npm test runs it; no thresholds)
npm run bench -- --only strict,baseline,orch-8 --sections json --connections 50   # one case, both yardsticks
\`\`\``

/** The file's text when it does not exist yet. */
export function freshPage(machine: string): string {
  return `# Performance

Every orchestrator figure is given against two yardsticks measured in the same run: the **strict** baseline
(\`bench/strict-baseline.ts\`: a bare \`node:http\` server that reads the body, parses it once and writes bytes built at
start) and the **mock baseline** (\`bench/baseline.ts\`: the same server doing the mock session's work per request).
CPU per request is split by thread: the main thread, the account workers (summed), and GC/other (V8's helper
threads, libuv's pool; \`bench/threads.ts\` says how threads are told apart).

First written by a run on ${machine};
each run below names its own machine. To rerun:

${RERUN}

${BEGIN}
${END}
`
}

/** `page` with the text between its markers replaced by `tables` (markers added at the end when it has none). */
export function withTables(page: string, tables: string): string {
  const body = `\n\n${tables.trim()}\n\n`
  for (const [begin, end] of [[BEGIN, END], [LEGACY_BEGIN, LEGACY_END]] as const) {
    const at = page.indexOf(begin)
    const to = page.indexOf(end, at)
    if (at < 0 || to < 0) continue
    const afterBegin = page.indexOf('-->', at) + 3 // the legacy start marker carries a note inside the comment
    return page.slice(0, afterBegin) + body + page.slice(to)
  }
  return `${page.trimEnd()}\n\n## The latest full run\n\n${BEGIN}${body}${END}\n`
}

/** Writes `tables` into the page at `file`; answers what it did, for the run's log. */
export function writeTables(file: string, tables: string, machine: string): string {
  const existed = existsSync(file)
  const page = existed ? readFileSync(file, 'utf8') : freshPage(machine)
  mkdirSync(dirname(file), { recursive: true })
  writeFileSync(file, withTables(page, tables))
  return existed ? `${file}: tables replaced` : `${file}: created`
}
