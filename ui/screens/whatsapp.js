// Connexion WhatsApp: links CamionBack's account by QR code (drawn by the Rust side as SVG)
// or by pairing code, and says where the connection stands. With the Cloud API or Twilio
// channel there is nothing to link, and the screen says which channel sends.

import { call } from "../lib/ipc.js";
import { $, errorBox, fill, h, toast } from "../lib/dom.js";
import { formatDateTime, secondsLeft } from "../lib/format.js";
import { followLink } from "../lib/link.js";

let countdown = null;

/** The channels with nothing to link here: what the screen calls them, and where the account is set up. */
const OTHER_CHANNELS = {
  "cloud-api": [
    "Canal : API Cloud officielle de WhatsApp",
    "Le compte est relié côté Meta (numéro et jeton dans les paramètres) : aucune action ici.",
  ],
  twilio: [
    "Canal : Twilio (API WhatsApp)",
    "Le compte est relié côté Twilio (identifiants et expéditeur dans les paramètres) : aucune action ici.",
  ],
};

export function enter(ctx) {
  load(ctx);
}

export function leave() {
  clearInterval(countdown);
  countdown = null;
}

export function onWhatsApp(ctx, state) {
  if (ctx.current === "whatsapp") render(ctx, state);
}

async function load(ctx) {
  try {
    const state = await call("whatsapp_state");
    ctx.whatsapp = state;
    ctx.link = followLink(ctx.link, state);
    render(ctx, state);
  } catch (err) {
    fill($("#whatsapp-body"), errorBox(err));
  }
}

async function newQr() {
  try {
    await call("whatsapp_new_qr");
    toast("Nouveaux QR codes demandés…");
  } catch (err) {
    toast(err.message, "bad");
  }
}

function pairingForm() {
  const input = h("input", {
    name: "phone",
    id: "pair-phone",
    inputmode: "numeric",
    placeholder: "212664373534",
    required: true,
  });
  const form = h(
    "form",
    { class: "pairing", id: "pair-form" },
    h("h3", {}, "Ou lier avec un code d'appairage"),
    h("p", { class: "muted small" }, "Numéro du compte WhatsApp CamionBack, indicatif du pays compris, sans le + :"),
    h("div", { class: "inline" }, input, h("button", { type: "submit" }, "Recevoir un code")),
  );
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    try {
      await call("whatsapp_pair_with_phone", { phone: input.value });
      toast("Code d'appairage reçu : tapez-le sur le téléphone (WhatsApp → Appareils connectés → Connecter avec un numéro).");
    } catch (err) {
      toast(err.message, "bad");
    }
  });
  return form;
}

/** "Déconnecter" asks first, in the page (no native dialog): nothing leaves once unlinked. */
function askUnlink() {
  fill(
    $("#wa-unlink-slot"),
    h(
      "div",
      { class: "notice warn" },
      "Déconnecter ce relais du compte WhatsApp ? Plus aucun message ne partira avant qu'un nouveau QR code soit scanné. ",
      h("button", { class: "danger", id: "wa-unlink-confirm", onclick: unlink }, "Oui, déconnecter"),
      " ",
      h("button", { class: "secondary", id: "wa-unlink-cancel", onclick: cancelUnlink }, "Annuler"),
    ),
  );
}

function cancelUnlink() {
  fill($("#wa-unlink-slot"), h("button", { class: "secondary", id: "wa-unlink", onclick: askUnlink }, "Déconnecter"));
}

/** This device leaves the account; the engine then shows a new QR code. */
async function unlink() {
  $("#wa-unlink-confirm").disabled = true;
  try {
    await call("whatsapp_unlink");
    toast("Relais déconnecté du compte WhatsApp : scannez le nouveau QR code pour le relier de nouveau.");
  } catch (err) {
    toast(err.message, "bad");
    cancelUnlink();
  }
}

function statusLine(tone, text) {
  return h("div", { class: `wa-status tone-${tone}`, id: "wa-status" }, text);
}

function relinkNotice(ctx) {
  if (!ctx.link?.relink) return null;
  return h(
    "p",
    { class: "notice bad", id: "wa-relink" },
    "Le téléphone a déconnecté le relais (Appareils connectés) : un nouveau QR code est nécessaire pour relier à nouveau le compte CamionBack.",
  );
}

function render(ctx, state) {
  clearInterval(countdown);
  countdown = null;
  const body = $("#whatsapp-body");
  switch (state.kind) {
    case "not_used": {
      const [title, hint] = OTHER_CHANNELS[state.channel] ?? OTHER_CHANNELS["cloud-api"];
      fill(
        body,
        h(
          "div",
          { class: "card wide" },
          statusLine("neutral", title),
          h("p", {}, state.description),
          h("p", { class: "muted small" }, hint),
        ),
      );
      return;
    }
    case "starting":
    case "connecting":
      fill(body, h("div", { class: "card wide" }, statusLine("pending", state.description)));
      return;
    case "qr": {
      const qr = h("div", { class: "qr", id: "wa-qr" });
      // The markup is drawn by the Rust side (qrcode crate) from WhatsApp's pairing payload:
      // only <svg>, <rect> and <path> elements, no script and no style.
      qr.innerHTML = state.qr_svg ?? "";
      const left = h("div", { class: "countdown", id: "wa-countdown" });
      const tick = () => {
        const seconds = secondsLeft(state.expires_at_ms, Date.now());
        left.textContent = seconds > 0 ? `Ce QR code expire dans ${seconds} s` : "Nouveau QR code en cours…";
      };
      tick();
      countdown = setInterval(tick, 1000);
      fill(
        body,
        h(
          "div",
          { class: "card wide qr-card" },
          h(
            "div",
            { class: "qr-side" },
            qr,
            left,
          ),
          h(
            "div",
            { class: "qr-help" },
            statusLine("pending", "WhatsApp non relié"),
            relinkNotice(ctx),
            h(
              "ol",
              {},
              h("li", {}, "Ouvrez WhatsApp sur le téléphone CamionBack (+212 664 373 534)."),
              h("li", {}, "Menu ⋮ ou Réglages → Appareils connectés → Connecter un appareil."),
              h("li", {}, "Visez ce QR code. Il change tout seul toutes les 20 secondes environ."),
            ),
            h("button", { class: "secondary", id: "wa-new-qr", onclick: newQr }, "🔄 Nouveau QR"),
            pairingForm(),
          ),
        ),
      );
      return;
    }
    case "qr_expired":
    case "unlinked":
    case "logged_out":
      fill(
        body,
        h(
          "div",
          { class: "card wide" },
          statusLine("bad", "WhatsApp non relié"),
          relinkNotice(ctx),
          h("p", {}, state.description),
          h("button", { id: "wa-new-qr", onclick: newQr }, "🔄 Nouveau QR"),
          pairingForm(),
        ),
      );
      return;
    case "pair_code":
      fill(
        body,
        h(
          "div",
          { class: "card wide" },
          statusLine("pending", "Code d'appairage"),
          h("div", { class: "pair-code", id: "wa-pair-code" }, state.pair_code ?? ""),
          h("p", {}, "Sur le téléphone : WhatsApp → Appareils connectés → Connecter un appareil → Connecter avec un numéro de téléphone, puis saisissez ce code."),
          h("button", { class: "secondary", onclick: newQr }, "Revenir au QR code"),
        ),
      );
      return;
    case "connected":
      fill(
        body,
        h(
          "div",
          { class: "card wide" },
          statusLine("ok", `✅ Connecté (${state.phone ?? ""})`),
          h("p", { class: "muted" }, "La session est enregistrée : le relais se reconnecte seul après un redémarrage ou une coupure."),
          h("div", { id: "wa-unlink-slot" }, h("button", { class: "secondary", id: "wa-unlink", onclick: askUnlink }, "Déconnecter")),
        ),
      );
      return;
    case "reconnecting":
      fill(body, h("div", { class: "card wide" }, statusLine("bad", "Connexion perdue"), h("p", {}, state.description)));
      return;
    case "unreachable":
      // Said as it is: no QR code can come while WhatsApp cannot be reached.
      fill(body, h("div", { class: "card wide" }, statusLine("bad", "WhatsApp injoignable"), h("p", { id: "wa-unreachable" }, state.description)));
      return;
    case "restricted":
      fill(
        body,
        h(
          "div",
          { class: "card wide" },
          statusLine("bad", `Nouvelles conversations interdites par WhatsApp (${state.phone ?? ""})`),
          h("p", { id: "wa-restricted" }, state.description),
          state.until_ms ? h("p", { class: "muted" }, `Reprise prévue le ${formatDateTime(state.until_ms)}.`) : null,
        ),
      );
      return;
    case "locked":
      fill(
        body,
        h(
          "div",
          { class: "card wide" },
          statusLine("bad", "Compte WhatsApp verrouillé"),
          h("p", {}, state.description),
          h("button", { id: "wa-new-qr", onclick: newQr }, "🔄 Nouveau QR"),
        ),
      );
      return;
    case "banned":
      fill(
        body,
        h(
          "div",
          { class: "card wide" },
          statusLine("bad", "Compte suspendu temporairement"),
          h("p", {}, state.description),
          state.until_ms ? h("p", { class: "muted" }, `Reprise prévue le ${formatDateTime(state.until_ms)}.`) : null,
        ),
      );
      return;
    default:
      fill(body, h("div", { class: "card wide" }, statusLine("bad", "WhatsApp"), h("p", {}, state.description)));
  }
}
