/** The compiler's proof that a `switch` over a tagged union is complete; at run time, a message nobody expected. */
export function assertNever(value: never): never {
  throw new Error(`unexpected message ${JSON.stringify(value)}`)
}
