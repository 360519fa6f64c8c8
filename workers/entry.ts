/**
 * The account worker's entry file, as the main thread hands it to piscina (through src/loader/worker-code.ts, which
 * strips it and its imports once). The dispatch side imports this name, so the hop to a worker reads as an import.
 * Nothing else lives here: importing it loads no worker code.
 */
import { fileURLToPath } from 'node:url'

export const ACCOUNT_WORKER = fileURLToPath(new URL('./account-worker.ts', import.meta.url))
