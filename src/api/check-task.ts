/** The helper thread's task (check-pool.ts): the same check the main thread runs on ordinary bodies. */
import { checkRequest, type Checked, type CheckTask } from './request-check.ts'

export default function checkTask(task: CheckTask): Checked {
  return checkRequest(task)
}
