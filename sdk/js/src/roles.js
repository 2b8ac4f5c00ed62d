// Who may do what. An event names its actor by account id; the accounts a call
// can reach are its subject and, for a sub-account, the parent agency (H1): a
// rule names them by role, never by id.

/** The accounts of a call, as rules name them in every capability call. */
export const Role = Object.freeze({
  /** The account the event is about. */
  Subject: 'subject',
  /** The subject's parent agency (sub-accounts only). */
  Parent: 'parent',
});

/** Whether `actor` is the subject itself. */
export function isSubject(actor, snapshot) {
  return actor === snapshot.id;
}

/** Whether `actor` is the subject's parent agency. */
export function isParentAgency(actor, snapshot) {
  return snapshot.parent !== undefined && snapshot.parent !== null && snapshot.parent === actor;
}

/**
 * Whether `actor` is the subject, or (with `orParent`) its parent agency, read
 * from the subject's snapshot. A refused snapshot throws `Refused`.
 */
export function actorAllowed(actor, caps, { orParent = false } = {}) {
  const subject = caps.snapshot(Role.Subject);
  return isSubject(actor, subject) || (orParent && isParentAgency(actor, subject));
}
