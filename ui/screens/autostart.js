// "Lancer à l'ouverture de session": a card of the Paramètres screen. Started that way, the
// app sends from the tray with its window hidden until "Ouvrir".

import { call } from "../lib/ipc.js";
import { h, toast } from "../lib/dom.js";

export function autostartCard() {
  const box = h("input", { type: "checkbox", id: "autostart-toggle", disabled: true });
  const card = h(
    "div",
    { class: "card" },
    h("h2", {}, "Démarrage"),
    h("label", { class: "check" }, box, " Lancer CamionBack Relay à l'ouverture de session (fenêtre masquée, icône dans la barre système)"),
  );
  call("autostart_state")
    .then((enabled) => {
      box.checked = enabled;
      box.disabled = false;
    })
    .catch((err) => toast(err.message, "bad"));
  box.addEventListener("change", async () => {
    box.disabled = true;
    try {
      const enabled = await call("set_autostart", { enabled: box.checked });
      toast(enabled ? "L'application démarrera avec la session." : "Démarrage automatique désactivé.");
    } catch (err) {
      box.checked = !box.checked;
      toast(err.message, "bad");
    } finally {
      box.disabled = false;
    }
  });
  return card;
}
