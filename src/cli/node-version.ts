/**
 * The one check that this Node can run the TypeScript sources by itself (type stripping, Node ≥ 22.18); `npm start`
 * and `agyc` use the Node 24 npm installs, so this speaks to whoever runs a file with another `node`. bin/agyc makes
 * the same check in shell before it can run any of this.
 */
export const MINIMUM_NODE = '22.18'

export function requireSupportedNode(hint = ''): void {
  const [major, minor] = process.versions.node.split('.').map(Number)
  const [needMajor, needMinor] = MINIMUM_NODE.split('.').map(Number)
  if (major > needMajor || (major === needMajor && minor >= needMinor)) return
  process.stderr.write(`agyc needs Node ≥ ${MINIMUM_NODE} (this is ${process.version})${hint}\n`)
  process.exit(1)
}
