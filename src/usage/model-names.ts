/**
 * Which model names the usage ledger keeps apart. A model name comes from the client (or from what its upstream
 * answered), so left alone each distinct name would become a ledger series, a `model` label on the usage metrics and
 * an entry in usage.json: 3 000 requests with distinct 2 KB names turned a 5 KB scrape into 37 MB (issue 16). The rule:
 * - a name an account declares (its `models`, its `aliases` on either side, its preset's `session.model`) is always
 *   kept under its own name: the config bounds those;
 * - any other name is kept under its own name only while the account has fewer than `MAX_UNDECLARED_MODELS` such
 *   names and it is at most `MAX_MODEL_NAME_LENGTH` characters long (an account without `models` serves whatever is
 *   asked, and the first few names are what its users really send);
 * - everything else is folded into one `OTHER_MODEL` series per account, and counted (`agyc_labels_folded_total`).
 * So an account holds at most its declared names + 16 + 1 series, whatever its clients send.
 */
import type { AccountConfig } from '../config/schema.ts'

/** undeclared names kept apart per account; the next distinct one folds into `OTHER_MODEL` */
export const MAX_UNDECLARED_MODELS = 16
/** longer names fold at once: real model ids are ~20–90 characters (a Bedrock inference-profile ARN is the longest) */
export const MAX_MODEL_NAME_LENGTH = 128
/** the series every folded name is counted under */
export const OTHER_MODEL = 'other'

/** Whether `account` declares `model` (its series is then never folded). */
export type DeclaredModels = (account: string, model: string) => boolean

/** The names one account's config declares. */
export function namesDeclaredBy(config: AccountConfig): ReadonlySet<string> {
  const names = new Set<string>(config.models ?? [])
  for (const [alias, target] of Object.entries(config.aliases ?? {})) {
    names.add(alias)
    names.add(target)
  }
  const fixed = (config.session as { model?: unknown }).model
  if (typeof fixed === 'string') names.add(fixed)
  return names
}

/**
 * A `DeclaredModels` over the account configs `accounts()` returns at the time of the question (a reload replaces
 * them). Each config's set is made once, on first question. Asked only for a name the ledger has no series for yet
 * and for folded names, so a linear look through the accounts is fine.
 */
export function declaredIn(accounts: () => Iterable<AccountConfig>): DeclaredModels {
  const sets = new WeakMap<AccountConfig, ReadonlySet<string>>()
  return function declared(account, model) {
    // every config with that id: during a reload the leaving account and its replacement both serve
    for (const config of accounts()) {
      if (config.id !== account) continue
      let names = sets.get(config)
      if (!names) sets.set(config, names = namesDeclaredBy(config))
      if (names.has(model)) return true
    }
    return false
  }
}
