// Memory stores hand out copies made the way the Redis stores make them: through JSON. That
// way callers can neither share mutable state with a store nor see a shape (for example a
// property set to undefined) that only the memory implementation would return.

/** A deep copy of a JSON-shaped value, as it would come back from a JSON-encoding store. */
export function jsonCopy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value)) as T;
}
