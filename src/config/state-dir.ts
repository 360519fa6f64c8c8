/**
 * An account's state directory: absolute (config/load.ts resolved it), created if missing, mode 0700, and checked to
 * be a real directory we own. Its `tmp/` becomes the child's TMPDIR: agent CLIs put per-user files there
 * (docs/agent-clis.md).
 *
 * The config loader refuses a symbolic link it finds on the way at load time; one planted after that (between load
 * and the account's start, or before a restart) must not be followed either. So each level is created with a plain
 * `mkdir` (never `recursive`, which follows links) and then `lstat`ed: a link, a non-directory or another user's
 * directory is refused. The directory itself is then opened with O_NOFOLLOW|O_DIRECTORY and its `fstat` compared with
 * what was checked, and its mode set through that descriptor, so a link swapped in between the check and the chmod is
 * refused instead of followed. Once created, every level is ours and 0700: nobody else can swap anything in it.
 */
import { closeSync, constants, fchmodSync, fstatSync, lstatSync, mkdirSync, openSync, statSync, writeFileSync, type Stats } from 'node:fs'
import { isAbsolute, join, relative, sep } from 'node:path'

const uid = typeof process.getuid === 'function' ? process.getuid() : undefined

export interface StateDirs {
  stateDir: string
  tmpDir: string
}

/**
 * Creates (or checks) `dir` and its `tmp/`. With `confinedTo` (a config with `confineStateDirs`: the resolved
 * stateRoot), every level between the root and `dir` is created or checked this way as well, and the root itself must
 * be ours and writable by nobody else (or another user could swap a level after it was checked).
 */
export function ensureStateDir(dir: string, confinedTo?: string): StateDirs {
  let stat: Stats
  if (confinedTo !== undefined) {
    const rel = relative(confinedTo, dir)
    if (rel === '' || rel.startsWith('..') || isAbsolute(rel)) throw new Error(`state directory ${dir} is not under stateRoot ${confinedTo}`)
    // the root and what leads to it are the operator's (a home directory reached through a link is fine)
    mkdirSync(confinedTo, { recursive: true, mode: 0o700 })
    const root = statSync(confinedTo)
    if ((root.mode & 0o022) !== 0 || (uid !== undefined && root.uid !== uid)) {
      throw new Error(`stateRoot ${confinedTo} must belong to this user and be writable by nobody else (chmod go-w)`)
    }
    let path = confinedTo
    stat = root
    const parts = rel.split(sep)
    for (const [i, part] of parts.entries()) {
      path = join(path, part)
      stat = ownDir(path)
      if (i < parts.length - 1 && (stat.mode & 0o022) !== 0) throw new Error(`${path} is writable by other users; state directories must not be`)
    }
  } else {
    // the parents are the operator's choice; the directory itself is created and checked here
    mkdirSync(join(dir, '..'), { recursive: true, mode: 0o700 })
    stat = ownDir(dir)
  }
  seal(dir, stat)
  return { stateDir: dir, tmpDir: privateDir(dir, 'tmp') }
}

/**
 * A folder directly inside a state directory already checked (`tmp`, `work`, a CLI's `.codex`): created 0700 if
 * missing; a link, a file or another user's directory planted there is refused, never followed.
 */
export function privateDir(parent: string, name: string): string {
  const path = join(parent, name)
  seal(path, ownDir(path))
  return path
}

/**
 * Writes a file of ours inside a state directory (a CLI's settings, a request file), 0600. A symbolic link planted at
 * that name is refused (O_NOFOLLOW), never written through.
 */
export function writePrivateFile(path: string, text: string): void {
  const { O_WRONLY, O_CREAT, O_TRUNC, O_NOFOLLOW } = constants
  let fd: number
  try {
    fd = openSync(path, O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW, 0o600)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new Error(`${path} is a symbolic link; state files are never written through links`)
    throw err
  }
  try {
    const stat = fstatSync(fd)
    if (!stat.isFile()) throw new Error(`${path} is not a regular file`)
    // the mode only applies to a file this call creates: one left by an older run becomes private too
    if ((stat.mode & 0o777) !== 0o600) fchmodSync(fd, 0o600)
    writeFileSync(fd, text)
  } finally {
    closeSync(fd)
  }
}

/** one level: a plain mkdir (never following a link), then proof that what is there is a directory of ours */
function ownDir(path: string): Stats {
  try {
    mkdirSync(path, { mode: 0o700 })
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err
  }
  const stat = lstatSync(path)
  if (stat.isSymbolicLink()) throw new Error(`${path} is a symbolic link; state directories are never reached through links`)
  if (!stat.isDirectory()) throw new Error(`state directory ${path} is not a directory`)
  if (uid !== undefined && stat.uid !== uid) throw new Error(`state directory ${path} belongs to another user`)
  return stat
}

/**
 * Opens the directory itself, refusing a link swapped in since `checked` was taken, and makes it 0700 through the
 * descriptor (mkdir's mode passes through the umask and does not touch an existing directory).
 */
function seal(path: string, checked: Stats): void {
  const { O_RDONLY, O_DIRECTORY, O_NOFOLLOW } = constants
  let fd: number
  try {
    fd = openSync(path, O_RDONLY | O_DIRECTORY | O_NOFOLLOW)
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ELOOP') throw new Error(`${path} is a symbolic link; state directories are never reached through links`)
    throw err
  }
  try {
    const opened = fstatSync(fd)
    if (opened.dev !== checked.dev || opened.ino !== checked.ino) throw new Error(`state directory ${path} was replaced while it was being checked`)
    if ((opened.mode & 0o777) !== 0o700) fchmodSync(fd, 0o700)
  } finally {
    closeSync(fd)
  }
}
