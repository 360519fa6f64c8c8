import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setImmediate as nextTurn } from 'node:timers/promises'
import { Packer, PACK_MAX } from '../src/dispatch/packing.ts'
import { createStrategies } from '../src/strategies/index.ts'
import { PowerOfTwoChoices } from '../src/strategies/least-busy.ts'
import type { AccountView, Strategy } from '../src/strategies/types.ts'
import { hello, mockAccounts, start } from './helpers/orchestrator.ts'

/** an account as a strategy sees it, with slots that requests take and give back */
class Slots implements AccountView {
  readonly id: string
  readonly maxConcurrency: number
  readonly weight: number
  assigned = 0
  lastAssignedSeq = 0
  healthScore = 1
  quotaLeft = 1
  open = true
  served = 0
  constructor(id: string, maxConcurrency: number, weight = 1) {
    this.id = id
    this.maxConcurrency = maxConcurrency
    this.weight = weight
  }
  get available(): boolean { return this.open && this.assigned < this.maxConcurrency }
}

// a fixed sequence, so that a failure can be rerun
const seeded = (seed: number) => () => ((seed = (seed * 16807) % 2147483647) / 2147483647)

/**
 * `total` requests, 1–`burst` of them per event-loop turn (real turns: the packer's turn ends on setImmediate), each
 * holding its slot for 1–3 turns, as a busy orchestrator sees them. Returns the accounts per turn the requests reached.
 */
async function drive(packer: Packer<Slots>, strategy: Strategy, accounts: Slots[], total: number, burst: number): Promise<number> {
  const random = seeded(42)
  const releases: Slots[][] = [[], [], [], []]
  let placed = 0
  let touched = 0
  let turns = 0
  let seq = 0
  while (placed < total) {
    for (const account of releases.shift()!) account.assigned--
    releases.push([])
    const reached = new Set<Slots>()
    const n = Math.min(total - placed, 1 + Math.floor(random() * burst))
    for (let i = 0; i < n; i++) {
      const account = packer.pick(strategy, accounts)
      if (!account) break // every slot taken: the dispatcher would queue it; it comes back next turn
      account.assigned++
      account.served++
      account.lastAssignedSeq = ++seq
      reached.add(account)
      releases[Math.floor(random() * 3)].push(account)
      placed++
    }
    touched += reached.size
    turns++
    await nextTurn()
  }
  return touched / turns
}

const shares = (accounts: Slots[]) => Object.fromEntries(accounts.map((a) => [a.id, a.served]))

test('round-robin packed per turn: 10 000 requests arriving several per turn, every account within ±2 % of its share', async () => {
  const strategies = createStrategies()
  const rr = strategies['round-robin']
  const packer = new Packer<Slots>(Object.values(strategies))
  const accounts = Array.from({ length: 8 }, (_, i) => new Slots(`acc${i + 1}`, 16))
  const perTurn = await drive(packer, rr, accounts, 10_000, 16)
  for (const a of accounts) assert.ok(Math.abs(a.served - 1250) <= 25, `${a.id} served ${a.served} of 10 000 (1250 ± 25): ${JSON.stringify(shares(accounts))}`)
  assert.ok(packer.followed > 5_000, `most requests followed their turn's first pick (${packer.followed})`)
  assert.ok(perTurn < 2.5, `a turn of up to 16 requests reached ${perTurn.toFixed(2)} accounts on average`)
})

test('weights 3:1 stay 75/25 (±2 %) over 10 000 packed requests', async () => {
  const strategies = createStrategies()
  const packer = new Packer<Slots>(Object.values(strategies))
  const accounts = [new Slots('w3', 16, 3), new Slots('w1', 16, 1)]
  await drive(packer, strategies['round-robin'], accounts, 10_000, 10)
  assert.ok(Math.abs(accounts[0].served / 10_000 - 0.75) <= 0.02, `w3 served ${accounts[0].served} of 10 000`)
})

test('a turn follows its first pick only while that account is available, up to PACK_MAX, for the same strategy and candidates', async () => {
  const strategies = createStrategies()
  const rr = strategies['round-robin']
  const packer = new Packer<Slots>(Object.values(strategies))
  const accounts = [new Slots('a', 3), new Slots('b', 100), new Slots('c', 100)]
  const take = (strategy: Strategy, list: Slots[] = accounts) => {
    const account = packer.pick(strategy, list)!
    account.assigned++
    return account.id
  }
  // a has 3 slots: the turn's fourth request goes to the strategy's next pick, and follows that one
  assert.deepEqual([1, 2, 3, 4, 5].map(() => take(rr)), ['a', 'a', 'a', 'b', 'b'])
  // another candidate list (another model, a failover's) asks the strategy
  const others = [accounts[2]]
  assert.equal(take(rr, others), 'c')
  await nextTurn()
  for (const a of accounts) a.assigned = 0
  // a new turn asks again; its first pick is followed by at most PACK_MAX requests in one turn
  const roomy = [accounts[1], accounts[2]]
  const picks = Array.from({ length: PACK_MAX + 1 }, () => take(rr, roomy))
  assert.deepEqual(picks, [...Array<string>(PACK_MAX).fill(picks[0]), picks[0] === 'b' ? 'c' : 'b'])
  // an account that went unavailable mid-turn (cooling, ejected, out of quota, parsing) is not followed
  await nextTurn()
  const first = take(rr, roomy)
  accounts.find((a) => a.id === first)!.open = false
  assert.notEqual(take(rr, roomy), first)
})

test('AGYC_PACK_MAX=1 turns packing off: every request asks its strategy, as without the packer', async () => {
  process.env.AGYC_PACK_MAX = '1'
  // a fresh instance of the module, which reads the variable once when it loads
  const off = (await import(new URL('../src/dispatch/packing.ts?off', import.meta.url).href)) as typeof import('../src/dispatch/packing.ts')
  delete process.env.AGYC_PACK_MAX
  assert.equal(off.PACK_MAX, 1)
  assert.equal(PACK_MAX, 8, 'the default')
  const packed = createStrategies()
  const plain = createStrategies()
  const packer = new off.Packer<Slots>(Object.values(packed))
  const mine = Array.from({ length: 4 }, (_, i) => new Slots(`acc${i + 1}`, 16))
  const theirs = Array.from({ length: 4 }, (_, i) => new Slots(`acc${i + 1}`, 16))
  for (let i = 0; i < 12; i++) assert.equal(packer.pick(packed['round-robin'], mine)?.id, plain['round-robin'].pick(theirs)?.id, `request ${i + 1}`)
  assert.equal(packer.followed, 0)
})

test('load-reading strategies are asked for every request: packing never changes their pick', async () => {
  const names = ['least-busy', 'health-score', 'least-recently-used', 'quota'] as const
  for (const name of names) {
    const packed = createStrategies()
    const plain = createStrategies()
    const packer = new Packer<Slots>(Object.values(packed))
    const mine = [new Slots('a', 4), new Slots('b', 4), new Slots('c', 4)]
    const theirs = [new Slots('a', 4), new Slots('b', 4), new Slots('c', 4)]
    mine[1].quotaLeft = theirs[1].quotaLeft = 0.9
    mine[2].healthScore = theirs[2].healthScore = 0.5
    let seq = 0
    for (let i = 0; i < 10; i++) {
      const p = packer.pick(packed[name], mine)
      const q = plain[name].pick(theirs)
      assert.equal(p?.id, q?.id, `${name}, request ${i + 1}`)
      seq++
      if (p) { p.assigned++; p.lastAssignedSeq = seq }
      if (q) { q.assigned++; q.lastAssignedSeq = seq }
    }
    assert.equal(packer.followed, 0, `${name} is never packed`)
  }
  const p2c = new PowerOfTwoChoices(seeded(3))
  const packer = new Packer<Slots>([p2c])
  const accounts = [new Slots('a', 4), new Slots('b', 4)]
  for (let i = 0; i < 6; i++) packer.pick(p2c, accounts)!.assigned++
  assert.equal(packer.followed, 0, 'power-of-two-choices is never packed')
})

test('over real HTTP at c=50, 10 000 round-robin requests over 8 accounts land within ±2 % each; a sticky conversation stays home', async (t) => {
  const { client, orch } = await start(t, {
    // eager, as the weights test: a parked account's first requests would be placed while its worker starts
    dispatcher: { strategy: 'round-robin', lazyWorkers: { enabled: false } },
    accounts: mockAccounts(8, {}, { maxConcurrency: 16 }),
  })
  const served: Record<string, number> = {}
  const homes = new Set<string>()
  let sent = 0
  const TOTAL = 10_000
  const sticky = { ...hello, metadata: { user_id: 'packing-conversation' } }
  async function connection(): Promise<void> {
    while (sent < TOTAL) {
      const i = sent++
      if (i % 100 === 0) {
        // one conversation's turn now and then: it goes home whatever the turn's packing does
        const { response } = await client.messages.create(sticky).withResponse()
        homes.add(response.headers.get('x-agyc-account') ?? '?')
      }
      const { response } = await client.messages.create(hello).withResponse()
      const id = response.headers.get('x-agyc-account') ?? '?'
      served[id] = (served[id] ?? 0) + 1
    }
  }
  await Promise.all(Array.from({ length: 50 }, connection))
  const share = TOTAL / 8
  for (const [id, n] of Object.entries(served)) {
    assert.ok(Math.abs(n - share) <= share * 0.02, `${id} served ${n} of ${TOTAL} (${share} ± 2 %): ${JSON.stringify(served)}`)
  }
  assert.equal(Object.keys(served).length, 8)
  assert.equal(homes.size, 1, `the sticky conversation was served by ${[...homes].join(', ')}`)
  assert.ok(orch.dispatcher.packed > 0, 'requests arrived several per turn and were packed')
})
