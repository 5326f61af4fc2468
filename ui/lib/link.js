// Whether the WhatsApp account is linked, and whether staff must be told that the phone
// unlinked the relay. The engine passes through `logged_out` for an instant only (it sets the
// dead session aside and opens a new one, which shows a QR code at once), and events may be
// coalesced: a QR code shown after the session was connected means the same thing, since a
// linked session never shows one.

export const NOT_LINKED = Object.freeze({ linked: false, relink: false });

const UNLINKED_KINDS = new Set(["qr", "qr_expired", "unlinked", "pair_code"]);

/** The link after `state` (a `relay:whatsapp` view), given the link before it. */
export function followLink(link, state) {
  const before = link ?? NOT_LINKED;
  if (state?.kind === "connected") return { linked: true, relink: false };
  if (state?.kind === "logged_out") return { linked: false, relink: true };
  if (UNLINKED_KINDS.has(state?.kind)) return { linked: false, relink: before.relink || before.linked };
  return before;
}
