/** Entry point of `npm start`: the same as `agyc start` (src/cli/start.ts). */
import { requireSupportedNode } from './cli/node-version.ts'
import { runStart } from './cli/start.ts'

requireSupportedNode('; run it through npm (npm start), which uses the Node 24 it installs')

await runStart(process.argv.slice(2))
