/** The helper thread's task (body-check.ts): the same check the main thread runs on ordinary bodies. */
import { HeapRelease } from '../loader/heap-release.ts'
import { checkRequest, type Checked, type CheckTask } from './request-check.ts'

/** the heap a large body's parse grew is given back once the thread has none left to check */
const heap = new HeapRelease()

export default function checkTask(task: CheckTask): Checked {
  const large = heap.began(task.body.length)
  try {
    return checkRequest(task)
  } finally {
    if (large) heap.ended()
  }
}
