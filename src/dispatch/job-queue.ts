/**
 * The bounded global queue: a doubly-linked list threaded through the jobs themselves, so push, shift and removal of
 * a job whose client left are all O(1) and allocate nothing.
 */
import type { Job } from './job.ts'

export class JobQueue {
  /** a reload may change it; lowering it never drops a waiting job */
  capacity: number
  #head: Job | undefined
  #tail: Job | undefined
  #size = 0

  constructor(capacity: number) {
    this.capacity = capacity
  }

  get size(): number { return this.#size }
  get head(): Job | undefined { return this.#head }

  /** false when full: the caller answers 529 at once */
  push(job: Job): boolean {
    if (this.#size >= this.capacity) return false
    job.prev = this.#tail
    job.next = undefined
    if (this.#tail) this.#tail.next = job
    else this.#head = job
    this.#tail = job
    this.#size++
    return true
  }

  /** Puts a job at the head, regardless of capacity: a failover keeps its place in line. */
  unshift(job: Job): void {
    job.prev = undefined
    job.next = this.#head
    if (this.#head) this.#head.prev = job
    else this.#tail = job
    this.#head = job
    this.#size++
  }

  remove(job: Job): void {
    if (job.prev) job.prev.next = job.next
    else if (this.#head === job) this.#head = job.next
    else return // not in this queue
    if (job.next) job.next.prev = job.prev
    else this.#tail = job.prev
    job.prev = job.next = undefined
    this.#size--
  }

  *[Symbol.iterator](): IterableIterator<Job> {
    for (let job = this.#head; job; job = job.next) yield job
  }
}
