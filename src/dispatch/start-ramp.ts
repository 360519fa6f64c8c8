/**
 * How many account workers start at once: at start-up, on a reload, and for parked accounts woken by requests
 * (parking.ts). A worker costs ~60 ms of CPU to start; a hundred at once starve the main thread (measured: 12 req/s
 * over the first 5 s of a burst over 100 parked accounts). On one core the total is the same whatever the bound
 * (issue-7b note); the bound keeps the HTTP thread responsive meanwhile.
 */
export const START_RAMP = 8

/** Starts each account's worker, START_RAMP at a time; `go` is asked before each start (a closing reload stops). */
export async function startAccounts(accounts: readonly { start(): Promise<void> }[], go: () => boolean = () => true): Promise<void> {
  const queue = [...accounts]
  const next = async (): Promise<void> => {
    for (let account = queue.shift(); account; account = queue.shift()) if (go()) await account.start()
  }
  await Promise.all(Array.from({ length: Math.min(START_RAMP, queue.length) }, next))
}
