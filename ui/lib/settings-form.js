// The Paramètres form's logic, without the DOM: which fields changed (only those are sent, so
// a value an environment variable imposes is never copied into config.toml by accident),
// secrets that are only ever written or cleared, where each value comes from, the refused
// fields of a save, and the debounce of the live preview.

/** The value each input starts with; secrets start empty (their value never reaches us). */
export function initialValues(view) {
  const values = {};
  for (const group of view.groups) {
    for (const field of group.fields) {
      values[field.key] = field.kind === "secret" ? "" : (field.value ?? "");
    }
  }
  return values;
}

/** Every field of the view, by key. */
export function fieldsByKey(view) {
  const fields = {};
  for (const group of view.groups) for (const field of group.fields) fields[field.key] = field;
  return fields;
}

/**
 * What to send to `save_settings`: `{changes: {KEY: value | null}, template?}`. A non-secret
 * field is sent when it differs from its starting value (blank means "back to the default");
 * a secret is sent when something was typed, or as `null` when "Effacer" was chosen; an empty
 * secret keeps the current one.
 */
export function formChanges(view, current, cleared = new Set(), templateText = view.template) {
  const initial = initialValues(view);
  const changes = {};
  for (const [key, field] of Object.entries(fieldsByKey(view))) {
    const value = String(current[key] ?? "");
    if (field.kind === "secret") {
      if (cleared.has(key)) changes[key] = null;
      else if (value.trim() !== "") changes[key] = value.trim();
      continue;
    }
    if (value.trim() === String(initial[key]).trim()) continue;
    changes[key] = value.trim() === "" ? null : value.trim();
  }
  const form = { changes };
  if (normaliseTemplate(templateText) !== normaliseTemplate(view.template)) form.template = templateText;
  return form;
}

function normaliseTemplate(text) {
  return String(text ?? "").replace(/[\r\n]+$/, "");
}

/** How many settings a form would change (the template counts as one). */
export function changeCount(form) {
  return Object.keys(form.changes).length + (form.template === undefined ? 0 : 1);
}

/** What a secret field says about the current value: never the value. */
export function secretState(field, cleared = false) {
  if (cleared) return "sera effacé à l'enregistrement";
  return field.set ? "🔒 défini (masqué)" : "non défini";
}

/** Where a value comes from, as a short note under the field, when it matters (or null). */
export function originNote(field) {
  if (field.origin === "env") {
    return "⚠ Imposé par une variable d'environnement : ce que vous enregistrez ici n'aura pas d'effet tant qu'elle est définie.";
  }
  return null;
}

/** The groups to show for `channel`: the common ones and that channel's own. */
export function visibleGroups(groups, channel) {
  return groups.filter((group) => !group.channel || group.channel === channel);
}

/** `{field: message}` of a refused save (empty when the error is not about fields). */
export function fieldErrors(err) {
  const errors = {};
  for (const problem of err?.fields ?? []) errors[problem.field] = problem.message;
  return errors;
}

/** Refused fields the form does not show (another channel's, or unknown): said in the summary. */
export function hiddenErrors(errors, shownKeys) {
  return Object.entries(errors)
    .filter(([field]) => !shownKeys.has(field))
    .map(([field, message]) => `${field} : ${message}`);
}

/** The preview's title: which order the message is shown with. */
export function previewTitle(preview) {
  return preview.placeholder
    ? `Message envoyé (exemple avec ${preview.reference} : aucune commande reçue pour l'instant)`
    : `Message envoyé (aperçu avec la dernière commande, ${preview.reference})`;
}

/**
 * `fn` called once, `ms` after the last of a burst of calls, with the last arguments: the
 * preview follows typing without one engine call per key.
 */
export function debounce(fn, ms, timers = globalThis) {
  let timer = null;
  const debounced = (...args) => {
    if (timer !== null) timers.clearTimeout(timer);
    timer = timers.setTimeout(() => {
      timer = null;
      fn(...args);
    }, ms);
  };
  debounced.cancel = () => {
    if (timer !== null) timers.clearTimeout(timer);
    timer = null;
  };
  return debounced;
}

/**
 * Answers that may come back out of order (a slow preview after a fast one): only the answer
 * to the newest request is kept.
 */
export function latestOnly() {
  let newest = 0;
  return async (promise) => {
    const ticket = ++newest;
    const value = await promise;
    return { current: ticket === newest, value };
  };
}
