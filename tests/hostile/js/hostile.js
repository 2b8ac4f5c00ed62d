// The hostile corpus's JavaScript policy, built on the SDK: what it does on a
// rated call (the `usage` event) depends on the subject account's id, as the
// Rust `rogue` does. `README.md` beside it says what the host must answer.
//
// - `spin-`: loops forever.
// - `grow-`: keeps 1 MiB typed arrays until the runtime fails.
// - `throw-`: requests a 1.00 top-up on the card `visa`, then throws a plain
//   `Error` (not a `PolicyError`) whether or not the request was accepted, so
//   the event traps after asking for a charge.
// - `wasi-`: tries the clock, randomness, network and console an author reaches
//   for, and saves what each attempt gave in the subject's state (the attempts
//   that abort the component instead have cases of their own:)
// - `fetch-`: `fetch('file:///etc/passwd')`, the nearest a script gets to a file.
// - `clock-`: `performance.now()`.
//
// Any other account, and every other event, is accepted doing nothing.

import { PolicyRules, Refused, Role, chargeKey, encodeJson, parse, saveState } from '@recharge/policy-sdk';

/** What one attempt gave: its value, or the class name of what it threw. */
function attempt(run) {
  try {
    return { value: run() ?? null };
  } catch (error) {
    return { threw: error?.constructor?.name ?? typeof error };
  }
}

/** The ambient authority an author might try, each attempt's outcome by name. */
function probeAmbient() {
  const { crypto, fetch, performance } = globalThis;
  return {
    'typeof fetch': typeof fetch,
    'Date.now()': attempt(() => [Date.now(), Date.now()]),
    'new Date()': attempt(() => new Date().toISOString()),
    'Math.random()': attempt(() => [Math.random(), Math.random()]),
    'crypto.getRandomValues()':
      typeof crypto?.getRandomValues === 'function'
        ? attempt(() => Array.from(crypto.getRandomValues(new Uint8Array(8))))
        : 'absent',
    'console.log()': attempt(() => console.log('hostile: wasi')),
    'typeof performance.now': typeof performance?.now,
  };
}

/** The `wasi-` findings as the subject's state: one JSON object. */
class Findings {
  constructor(attempts = {}) {
    this.attempts = attempts;
  }

  encode() {
    return encodeJson(this.attempts);
  }
}

class Hostile extends PolicyRules {
  handle(event, hasParent, caps) {
    if (event.tag !== 'usage') return;
    const id = caps.id(Role.Subject);
    if (id.startsWith('spin-')) {
      for (;;);
    } else if (id.startsWith('grow-')) {
      const hoard = [];
      for (;;) {
        const block = new Uint8Array(1 << 20);
        block[hoard.length % block.length] = 1;
        hoard.push(block);
      }
    } else if (id.startsWith('throw-')) {
      let request = 'accepted';
      try {
        caps.requestCharge(Role.Subject, 'visa', parse('1.00'), { tag: 'top-up' }, chargeKey('throw', caps.now()));
      } catch (error) {
        if (!(error instanceof Refused)) throw error;
        request = `refused (${error.message})`;
      }
      throw new Error(`thrown mid-event; the charge request was ${request}`);
    } else if (id.startsWith('wasi-')) {
      saveState(caps, Role.Subject, new Findings(probeAmbient()));
    } else if (id.startsWith('fetch-')) {
      fetch('file:///etc/passwd');
    } else if (id.startsWith('clock-')) {
      performance.now();
    }
  }

  query(actor, what, hasParent, caps) {
    return { tag: 'service', val: true };
  }

  describe(caps) {
    return {};
  }
}

export default new Hostile();
