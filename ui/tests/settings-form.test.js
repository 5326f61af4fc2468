import { mock, test } from "node:test";
import assert from "node:assert/strict";

import {
  changeCount,
  debounce,
  fieldErrors,
  formChanges,
  hiddenErrors,
  initialValues,
  latestOnly,
  originNote,
  previewTitle,
  secretState,
  visibleGroups,
} from "../lib/settings-form.js";

/** A settings view as the Rust side sends it (secrets: only `set`). */
function view() {
  return {
    template: "Commande {{reference}}",
    groups: [
      {
        id: "sending",
        channel: null,
        fields: [
          { key: "RELAY_CHANNEL", kind: "choice", value: "cloud-api", origin: "file" },
          { key: "RELAY_THROTTLE_MS", kind: "number", value: "1000", origin: "default" },
          { key: "CAMIONBACK_API_URL", kind: "text", value: "http://127.0.0.1:8900/", origin: "env" },
        ],
      },
      {
        id: "cloud-api",
        channel: "cloud-api",
        fields: [
          { key: "WHATSAPP_TOKEN", kind: "secret", value: null, set: true, origin: "env" },
          { key: "WHATSAPP_APP_SECRET", kind: "secret", value: null, set: false, origin: "default" },
        ],
      },
      { id: "whatsapp-web", channel: "whatsapp-web", fields: [{ key: "RELAY_TYPING", kind: "flag", value: "0", origin: "default" }] },
    ],
  };
}

test("an untouched form sends nothing, and secrets start empty", () => {
  const v = view();
  const current = initialValues(v);
  assert.equal(current.WHATSAPP_TOKEN, "");
  assert.equal(current.RELAY_THROTTLE_MS, "1000");
  const form = formChanges(v, current);
  assert.deepEqual(form, { changes: {} });
  assert.equal(changeCount(form), 0);
});

test("only the fields staff changed are sent, so an imposed value is not copied to the file", () => {
  const v = view();
  const current = { ...initialValues(v), RELAY_THROTTLE_MS: " 2500 ", RELAY_TYPING: "1" };
  const form = formChanges(v, current, new Set(), "Trajet {{ville_depart}}");
  assert.deepEqual(form, {
    changes: { RELAY_THROTTLE_MS: "2500", RELAY_TYPING: "1" },
    template: "Trajet {{ville_depart}}",
  });
  assert.equal(changeCount(form), 3);
  assert.equal("CAMIONBACK_API_URL" in form.changes, false);
});

test("emptying a field puts it back to its default; a trailing newline is no template change", () => {
  const v = view();
  const form = formChanges(v, { ...initialValues(v), CAMIONBACK_API_URL: "  " }, new Set(), "Commande {{reference}}\n");
  assert.deepEqual(form, { changes: { CAMIONBACK_API_URL: null } });
});

test("a secret is written when typed, kept when left empty, cleared only on request", () => {
  const v = view();
  const typed = formChanges(v, { ...initialValues(v), WHATSAPP_APP_SECRET: "nouveau-secret" });
  assert.deepEqual(typed.changes, { WHATSAPP_APP_SECRET: "nouveau-secret" });
  const cleared = formChanges(v, initialValues(v), new Set(["WHATSAPP_TOKEN"]));
  assert.deepEqual(cleared.changes, { WHATSAPP_TOKEN: null });
  assert.equal(secretState(v.groups[1].fields[0]), "🔒 défini (masqué)");
  assert.equal(secretState(v.groups[1].fields[1]), "non défini");
  assert.equal(secretState(v.groups[1].fields[0], true), "sera effacé à l'enregistrement");
});

test("a value from the environment says that saving it here has no effect", () => {
  const [, , url] = view().groups[0].fields;
  assert.match(originNote(url), /variable d'environnement/);
  assert.match(originNote(url), /n'aura pas d'effet tant qu'elle est définie/);
  assert.equal(originNote({ key: "X", origin: "file" }), null);
  assert.equal(originNote({ key: "X", origin: "default" }), null);
});

test("each channel shows its own settings only", () => {
  const ids = (channel) => visibleGroups(view().groups, channel).map((g) => g.id);
  assert.deepEqual(ids("cloud-api"), ["sending", "cloud-api"]);
  assert.deepEqual(ids("whatsapp-web"), ["sending", "whatsapp-web"]);
  assert.deepEqual(ids("twilio"), ["sending"]);
});

test("refused fields are matched to their inputs; the others are listed in the summary", () => {
  const err = {
    code: "invalid_settings",
    message: "2 réglages refusés : rien n'a été enregistré",
    fields: [
      { field: "CAMIONBACK_API_URL", message: "« x » n'est pas une URL" },
      { field: "WHATSAPP_TOKEN", message: "obligatoire avec le canal cloud-api" },
    ],
  };
  const errors = fieldErrors(err);
  assert.equal(errors.CAMIONBACK_API_URL, "« x » n'est pas une URL");
  assert.deepEqual(hiddenErrors(errors, new Set(["CAMIONBACK_API_URL"])), [
    "WHATSAPP_TOKEN : obligatoire avec le canal cloud-api",
  ]);
  assert.deepEqual(fieldErrors({ code: "write", message: "disque plein" }), {});
});

test("the preview says which order it uses", () => {
  assert.equal(
    previewTitle({ reference: "CMD-2025-9", placeholder: false }),
    "Message envoyé (aperçu avec la dernière commande, CMD-2025-9)",
  );
  assert.match(previewTitle({ reference: "CMD-2025-123", placeholder: true }), /aucune commande reçue/);
});

test("typing a burst calls the preview once, with the last text", () => {
  mock.timers.enable({ apis: ["setTimeout"] });
  try {
    const calls = [];
    const preview = debounce((text) => calls.push(text), 250);
    preview("C");
    mock.timers.tick(100);
    preview("Co");
    mock.timers.tick(100);
    preview("Com");
    assert.deepEqual(calls, []);
    mock.timers.tick(249);
    assert.deepEqual(calls, []);
    mock.timers.tick(1);
    assert.deepEqual(calls, ["Com"]);
    preview("Comm");
    preview.cancel();
    mock.timers.tick(1000);
    assert.deepEqual(calls, ["Com"]);
  } finally {
    mock.timers.reset();
  }
});

test("a slow preview answer does not overwrite a newer one", async () => {
  const latest = latestOnly();
  let releaseSlow;
  const slow = latest(new Promise((resolve) => (releaseSlow = resolve)));
  const fast = latest(Promise.resolve("récent"));
  assert.deepEqual(await fast, { current: true, value: "récent" });
  releaseSlow("ancien");
  assert.deepEqual(await slow, { current: false, value: "ancien" });
});
