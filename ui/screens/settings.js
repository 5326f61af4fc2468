// Paramètres: the settings as a form. Secrets are write-only: the Rust side sends only whether
// each one is set; typing a new one replaces it, leaving it empty keeps it, "Effacer" clears
// it. "Enregistrer" sends only the changed fields; the engine checks the whole resulting
// configuration (errors come back per field, nothing is written), writes config.toml, and the
// relay restarts with it. The message preview is rendered by the engine as you type.

import { call } from "../lib/ipc.js";
import { $, $$, errorBox, fill, h, toast } from "../lib/dom.js";
import { autostartCard } from "./autostart.js";
import {
  changeCount,
  debounce,
  fieldErrors,
  fieldsByKey,
  formChanges,
  hiddenErrors,
  initialValues,
  latestOnly,
  originNote,
  previewTitle,
  secretState,
  visibleGroups,
} from "../lib/settings-form.js";

const PREVIEW_DEBOUNCE_MS = 250;

/** The view the form was drawn from, and the secrets marked for clearing. */
const state = { view: null, cleared: new Set(), saving: false };
const latestPreview = latestOnly();
const schedulePreview = debounce(renderPreview, PREVIEW_DEBOUNCE_MS);

export function enter() {
  // Coming back to the screen keeps what was typed; otherwise the form is read afresh (the
  // preview then uses the newest order).
  if (!state.view || !$("#settings-form") || changeCount(formChanges(state.view, currentValues(), state.cleared, $("#template-input").value)) === 0) {
    load();
  }
}

async function load() {
  const body = $("#settings-body");
  try {
    draw(await call("settings_view"));
  } catch (err) {
    fill(body, errorBox(err));
  }
}

function inputOf(field) {
  const id = `field-${field.key}`;
  const common = { id, name: field.key, dataset: { key: field.key }, "aria-describedby": `error-${field.key}` };
  switch (field.kind) {
    case "choice":
      return h(
        "select",
        { ...common, onchange: onChannelChange },
        field.choices.map((choice) => h("option", { value: choice, selected: choice === field.value }, choice)),
      );
    case "flag":
      return h("input", { ...common, type: "checkbox", checked: field.value === "1" });
    case "secret":
      return h("input", {
        ...common,
        type: "password",
        autocomplete: "new-password",
        placeholder: field.set ? "inchangé — tapez pour remplacer" : "non défini — tapez pour définir",
      });
    case "number":
      return h("input", { ...common, type: "text", inputmode: "numeric", value: field.value ?? "", size: 10 });
    default:
      return h("input", { ...common, type: "text", value: field.value ?? "", spellcheck: "false" });
  }
}

function secretControls(field) {
  const stateEl = h("span", { class: `secret-state badge ${field.set ? "tone-neutral" : "muted"}` }, secretState(field));
  const clear = h(
    "button",
    { type: "button", class: "link clear-secret", dataset: { key: field.key }, hidden: !field.set },
    "Effacer",
  );
  clear.addEventListener("click", () => {
    const clearing = !state.cleared.has(field.key);
    if (clearing) state.cleared.add(field.key);
    else state.cleared.delete(field.key);
    $(`#field-${field.key}`).value = "";
    $(`#field-${field.key}`).disabled = clearing;
    stateEl.textContent = secretState(field, clearing);
    clear.textContent = clearing ? "Annuler l'effacement" : "Effacer";
  });
  return h("div", { class: "secret-line" }, stateEl, clear);
}

function fieldRow(field) {
  const note = originNote(field);
  return [
    h("dt", {}, h("label", { for: `field-${field.key}` }, field.label), h("div", { class: "key" }, field.key)),
    h(
      "dd",
      { dataset: { key: field.key }, class: field.origin === "env" ? "from-env" : null },
      field.kind === "secret" ? secretControls(field) : null,
      h("div", { class: "input-line" }, inputOf(field), field.unit ? h("span", { class: "muted" }, field.unit) : null),
      field.hint ? h("div", { class: "muted small" }, field.hint) : null,
      note ? h("div", { class: `origin small ${field.origin === "env" ? "tone-warn" : "muted"}` }, note) : null,
      h("div", { class: "field-error", id: `error-${field.key}`, role: "alert", dataset: { for: field.key } }),
    ),
  ];
}

function draw(view) {
  state.view = view;
  state.cleared = new Set();
  const channel = fieldsByKey(view).RELAY_CHANNEL?.value;
  fill(
    $("#settings-body"),
    h("div", { id: "settings-status", role: "status" }),
    h(
      "form",
      { id: "settings-form", autocomplete: "off", onsubmit: onSave },
      h(
        "div",
        { class: "form-actions" },
        h("button", { type: "submit", id: "settings-save" }, "💾 Enregistrer et appliquer"),
        h("button", { type: "button", class: "secondary", id: "settings-reset", onclick: () => draw(state.view) }, "Annuler les modifications"),
      ),
      h(
        "div",
        { class: "cards" },
        view.groups.map((group) =>
          h(
            "div",
            { class: "card settings-group", dataset: { group: group.id, channel: group.channel ?? "" }, hidden: group.channel && group.channel !== channel },
            h("h2", {}, group.title),
            group.fields.length
              ? h("dl", { class: "settings" }, group.fields.map(fieldRow))
              : h("p", { class: "muted" }, "Aucun réglage propre à ce canal."),
          ),
        ),
        h(
          "div",
          { class: "card" },
          h("h2", {}, "Dossiers"),
          h(
            "dl",
            { class: "settings" },
            h("dt", {}, "Données", h("div", { class: "key" }, "RELAY_DATA_DIR")),
            h("dd", {}, h("div", { class: "mono" }, view.data_dir), h("button", { type: "button", class: "secondary", id: "open-data", onclick: () => openFolder("data") }, "📂 Ouvrir le dossier des données")),
            h("dt", {}, "Journaux"),
            h("dd", {}, h("div", { class: "mono" }, view.log_dir), h("button", { type: "button", class: "secondary", id: "open-logs", onclick: () => openFolder("logs") }, "📂 Ouvrir le dossier des journaux")),
          ),
          h("p", { class: "muted small" }, `Les réglages enregistrés ici vont dans ${view.config_file} (lisible par vous seul).`),
        ),
        autostartCard(),
      ),
      h(
        "div",
        { class: "card wide template-card" },
        h("h2", {}, "Message envoyé aux transporteurs"),
        h(
          "p",
          { class: "muted small" },
          "Variables : {{ville_depart}} {{ville_arrivee}} {{date}} {{prix}} {{type_colis}} {{lien_commande}} {{reference}}",
        ),
        view.approved_template
          ? h("div", { class: "notice warn" }, `Avec le modèle approuvé « ${view.approved_template} » (API Cloud), WhatsApp affiche le texte approuvé chez Meta, rempli avec les mêmes valeurs : ce modèle-ci ne sert pas.`)
          : null,
        h(
          "div",
          { class: "template-edit" },
          h(
            "div",
            {},
            h("label", { for: "template-input", class: "small muted" }, "Modèle"),
            h("textarea", { id: "template-input", name: "template", rows: 14, spellcheck: "false", oninput: () => schedulePreview() }),
            h("div", { class: "field-error", id: "error-template", role: "alert", dataset: { for: "template" } }),
          ),
          h(
            "div",
            {},
            h("div", { class: "small muted", id: "preview-title" }, previewTitle(view.preview)),
            h("pre", { class: "bubble", id: "template-preview" }, view.preview.text),
          ),
        ),
      ),
    ),
  );
  // Set as a property: a textarea's text is not an attribute.
  $("#template-input").value = view.template;
}

function onChannelChange(event) {
  const channel = event.target.value;
  const shown = new Set(visibleGroups(state.view.groups, channel).map((g) => g.id));
  for (const card of $$(".settings-group")) card.hidden = !shown.has(card.dataset.group);
}

async function renderPreview() {
  const text = $("#template-input")?.value;
  if (text === undefined) return;
  const error = $("#error-template");
  try {
    const answer = await latestPreview(call("preview_message", { template: text }).then(
      (preview) => ({ preview }),
      (err) => ({ err }),
    ));
    if (!answer.current) return;
    if (answer.value.err) {
      error.textContent = answer.value.err.message;
      $("#template-preview").classList.add("stale");
      return;
    }
    error.textContent = "";
    $("#template-preview").classList.remove("stale");
    $("#template-preview").textContent = answer.value.preview.text;
    $("#preview-title").textContent = previewTitle(answer.value.preview);
  } catch (err) {
    error.textContent = err.message ?? String(err);
  }
}

function currentValues() {
  const values = {};
  for (const key of Object.keys(initialValues(state.view))) {
    const input = $(`#field-${key}`);
    if (!input) continue;
    values[key] = input.type === "checkbox" ? (input.checked ? "1" : "0") : input.value;
  }
  return values;
}

function showStatus(message, tone) {
  fill($("#settings-status"), h("div", { class: `notice ${tone}`, id: "settings-message" }, message));
}

function clearErrors() {
  for (const el of $$(".field-error")) el.textContent = "";
  for (const el of $$(".has-error")) el.classList.remove("has-error");
}

async function onSave(event) {
  event.preventDefault();
  if (state.saving) return;
  schedulePreview.cancel();
  clearErrors();
  const form = formChanges(state.view, currentValues(), state.cleared, $("#template-input").value);
  if (changeCount(form) === 0) {
    showStatus("Aucune modification à enregistrer.", "");
    return;
  }
  const button = $("#settings-save");
  state.saving = true;
  button.disabled = true;
  button.textContent = "Enregistrement et redémarrage du relais…";
  showStatus("Enregistrement… le relais redémarre après l'envoi en cours.", "");
  try {
    const outcome = await call("save_settings", { form });
    if (outcome.view) {
      draw(outcome.view);
      const channel = fieldsByKey(outcome.view).RELAY_CHANNEL?.value;
      if (outcome.applied && channel) $("#brand-channel").textContent = `canal ${channel}`;
    }
    // An engine that had failed to start may run now: its banner no longer applies.
    if (outcome.applied) $("#engine-banner").hidden = true;
    showStatus(outcome.message, outcome.applied && outcome.overridden.length === 0 ? "ok" : "warn");
    $("#settings-status").scrollIntoView({ block: "start" });
    toast(outcome.applied ? "Réglages enregistrés et appliqués." : "Réglages enregistrés, non appliqués.", outcome.applied ? "ok" : "bad");
  } catch (err) {
    const errors = fieldErrors(err);
    const shown = new Set();
    for (const [field, message] of Object.entries(errors)) {
      const slot = $(`#error-${field}`);
      if (!slot || slot.closest("[hidden]")) continue;
      slot.textContent = message;
      slot.closest("dd")?.classList.add("has-error");
      shown.add(field);
    }
    const others = hiddenErrors(errors, shown);
    showStatus([err.message, ...others].join(" — "), "bad");
    const first = $(".has-error input, .has-error select");
    if (first) {
      // Scrolled by hand, with room for its label below the sticky buttons.
      const main = first.closest("main");
      if (main) main.scrollTop += first.getBoundingClientRect().top - main.getBoundingClientRect().top - 160;
      first.focus({ preventScroll: true });
    }
  } finally {
    state.saving = false;
    const again = $("#settings-save");
    if (again) {
      again.disabled = false;
      again.textContent = "💾 Enregistrer et appliquer";
    }
  }
}

async function openFolder(folder) {
  try {
    await call("open_folder", { folder });
  } catch (err) {
    toast(err.message, "bad");
  }
}
