// Memory stores hand out copies made the way the Redis stores make them: through JSON. That
// way callers can neither share mutable state with a store nor see a shape (for example a
// property set to undefined) that only the memory implementation would return.

/**
 * A deep copy of a JSON-shaped value, as it would come back from a JSON-encoding store. A flat
 * record (strings, numbers, booleans, null: a binding, most of what the hot paths copy) is
 * copied field by field, without the JSON round trip, which the all-in-one's login and chat
 * profiles showed at 3 % of its CPU.
 */
export function jsonCopy<T>(value: T): T {
  return isFlatRecord(value) ? flatCopy(value) : (JSON.parse(JSON.stringify(value)) as T);
}

function isFlatRecord(value: unknown): value is Record<string, unknown> {
  if (typeof value !== "object" || value === null || Array.isArray(value)) return false;
  if (Object.getPrototypeOf(value) !== Object.prototype) return false;
  for (const key in value) {
    const field = (value as Record<string, unknown>)[key];
    switch (typeof field) {
      case "string":
      case "boolean":
      case "undefined":
        continue;
      case "number":
        // JSON writes NaN and the infinities as null, and -0 as 0: left to it.
        if (Number.isFinite(field) && !Object.is(field, -0)) continue;
        return false;
      case "object":
        if (field === null) continue;
        return false;
      default:
        return false;
    }
  }
  return true;
}

/** The fields JSON would keep: all but those set to undefined. */
function flatCopy<T>(value: Record<string, unknown>): T {
  const copy: Record<string, unknown> = {};
  for (const key in value) if (value[key] !== undefined) copy[key] = value[key];
  return copy as T;
}
