/** Entry point of `npm start`: the same as `agyc start` (src/cli/start.ts). */
import { runStart } from './cli/start.ts'

const [major, minor] = process.versions.node.split('.').map(Number)
if (major < 22 || (major === 22 && minor < 18)) {
  process.stderr.write(`agyc needs Node ≥ 22.18 (this is ${process.version}); run it through npm (npm start), which uses the Node 24 it installs\n`)
  process.exit(1)
}

await runStart(process.argv.slice(2))
