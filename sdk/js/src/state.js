// The policy's per-account state is bytes the host keeps and commits with the
// event (`account.state` / `set-state`). `loadState` and `saveState` read and
// write a typed state, as the Rust SDK's `Helpers::load_state` / `save_state`
// do; the other helpers turn bytes into text, fields or JSON and back, each
// decoder returning `null` for bytes it cannot read.

import { PolicyError } from './errors.js';

/**
 * The policy's state for the account, as an instance of `State`: a class whose
 * `new State()` is the default, whose `static decode(bytes)` returns an instance
 * or `null`, and whose instances `encode()` to bytes. No state saved yet is the
 * default; bytes that cannot be read are an error (`policy-error.refused`,
 * "policy state unreadable"), not a silent reset.
 */
export function loadState(caps, who, State) {
  const bytes = caps.state(who);
  if (bytes.length === 0) return new State();
  const state = State.decode(bytes);
  if (state == null) throw PolicyError.refused('policy state unreadable');
  return state;
}

/** Replace the policy's state for the account with `state.encode()`, committed with the event. */
export function saveState(caps, who, state) {
  caps.setState(who, state.encode());
}

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
