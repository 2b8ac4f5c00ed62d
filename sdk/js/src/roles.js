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

/** Who is asking, relative to the subject (the Rust SDK's `Actor`). */
export const Actor = Object.freeze({
  /** The subject account itself. */
  Subject: 'subject',
  /** The subject's parent agency. */
  Agency: 'agency',
  /** Anyone else. */
  Other: 'other',
});

/** Whether `actor` is the subject itself. */
export function isSubject(actor, snapshot) {
  return actor === snapshot.id;
}

/** Whether `actor` is the subject's parent agency. */
export function isParentAgency(actor, snapshot) {
  return snapshot.parent != null && snapshot.parent === actor;
}

/**
 * Whether `actor` is the subject, its parent agency, or someone else, read from
 * the subject's snapshot (the Rust SDK's `Helpers::actor`). A refused snapshot
 * throws `Refused`.
 */
export function actorOf(caps, actor) {
  const subject = caps.snapshot(Role.Subject);
  if (isSubject(actor, subject)) return Actor.Subject;
  return isParentAgency(actor, subject) ? Actor.Agency : Actor.Other;
}
