// Paramètres: the effective settings, read-only in this version. Secrets arrive only as
// "défini (masqué)" or absent: the Rust side never sends their value.

import { call } from "../lib/ipc.js";
import { $, errorBox, fill, h } from "../lib/dom.js";
import { autostartCard } from "./autostart.js";

export function enter() {
  load();
}

async function load() {
  const body = $("#settings-body");
  try {
    const view = await call("settings_view");
    fill(
      body,
      h(
        "div",
        { class: "notice" },
        "Lecture seule dans cette version : pour modifier un réglage, éditez config.toml dans le dossier de données (mêmes noms que les variables d'environnement), puis relancez l'application.",
      ),
      h(
        "div",
        { class: "cards" },
        view.groups.map((group) =>
          h(
            "div",
            { class: "card" },
            h("h2", {}, group.title),
            h(
              "dl",
              { class: "settings" },
              group.items.map((item) => [
                h("dt", {}, item.label, h("div", { class: "key" }, item.key)),
                h(
                  "dd",
                  { dataset: { key: item.key } },
                  item.value === null
                    ? h("span", { class: "muted" }, "non défini")
                    : item.secret
                      ? h("span", { class: "badge tone-neutral" }, "🔒 ", item.value)
                      : h("span", { class: "mono" }, item.value),
                ),
              ]),
            ),
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
            h("dd", { class: "mono" }, view.data_dir),
            h("dt", {}, "Journaux"),
            h("dd", { class: "mono" }, view.log_dir),
          ),
        ),
        autostartCard(),
      ),
      h(
        "div",
        { class: "card wide" },
        h("h2", {}, `Message envoyé (aperçu avec ${view.preview_reference})`),
        h("p", { class: "muted small" }, "Modèle intégré, ou template.txt dans le dossier de données."),
        h("pre", { class: "bubble", id: "template-preview" }, view.template_preview),
      ),
    );
  } catch (err) {
    fill(body, errorBox(err));
  }
}
