/**
 * An account's state directory: absolute (config/load.ts resolved it), created if missing, mode 0700, and checked to
 * be a directory we own. Its `tmp/` becomes the child's TMPDIR: agent CLIs put per-user files there (agent-clis.md).
 */
import { chmodSync, lstatSync, mkdirSync } from 'node:fs'
import { join } from 'node:path'

export function ensureStateDir(dir: string): { stateDir: string; tmpDir: string } {
  mkdirSync(dir, { recursive: true, mode: 0o700 })
  const stat = lstatSync(dir)
  if (!stat.isDirectory()) throw new Error(`state directory ${dir} is not a directory`)
  if (typeof process.getuid === 'function' && stat.uid !== process.getuid()) throw new Error(`state directory ${dir} belongs to another user`)
  // mkdir's mode only applies to directories it creates (and passes through the umask): make an existing one private too
  if ((stat.mode & 0o777) !== 0o700) chmodSync(dir, 0o700)
  const tmpDir = join(dir, 'tmp')
  mkdirSync(tmpDir, { recursive: true, mode: 0o700 })
  return { stateDir: dir, tmpDir }
}
