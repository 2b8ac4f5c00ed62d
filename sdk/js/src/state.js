// The policy's per-account state is bytes the host keeps and commits with the
// event (`account.state` / `set-state`). These helpers turn it into text, fields
// or JSON and back. Every decoder returns `null` for bytes it cannot read (none
// saved yet, an older layout, garbage), so a rule can start afresh.

const encoder = new TextEncoder();

/** Text as UTF-8 bytes. */
export function textToBytes(text) {
  return encoder.encode(text);
}

/** UTF-8 bytes as text, or `null` if they are not valid UTF-8 (a BOM is kept, as Rust keeps it). */
export function bytesToText(bytes) {
  try {
    return new TextDecoder('utf-8', { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
}

/** Fields joined by `separator` (default `|`), as bytes: the compact one-line form. */
export function encodeFields(fields, separator = '|') {
  return textToBytes(fields.map(String).join(separator));
}

/**
 * Bytes split at `separator` into at most `limit` fields, the last taking the
 * rest (Rust's `splitn`), or `null` if they are not UTF-8.
 */
export function decodeFields(bytes, limit = Infinity, separator = '|') {
  const text = bytesToText(bytes);
  if (text === null) return null;
  const fields = [];
  let from = 0;
  while (fields.length + 1 < limit) {
    const at = text.indexOf(separator, from);
    if (at < 0) break;
    fields.push(text.slice(from, at));
    from = at + separator.length;
  }
  fields.push(text.slice(from));
  return fields;
}

/** A value as JSON bytes; bigints become decimal strings (store decimals with `format`). */
export function encodeJson(value) {
  return textToBytes(JSON.stringify(value, (_, item) => (typeof item === 'bigint' ? item.toString() : item)));
}

/** JSON bytes as a value, or `null` when empty or unreadable. */
export function decodeJson(bytes) {
  const text = bytesToText(bytes);
  if (!text) return null;
  try {
    return JSON.parse(text);
  } catch {
    return null;
  }
}

/** An unsigned 64-bit counter written by `String(bigint)`, or `null`: `"+7"` reads as Rust reads it. */
export function parseCounter(text) {
  if (!/^\+?\d+$/.test(text)) return null;
  const value = BigInt(text);
  return value < 1n << 64n ? value : null;
}
