// Entry point: navigation between the five screens, the live state from the relay's events,
// and the banner shown while the engine starts or when it could not start.

import { call, on } from "./lib/ipc.js";
import { $, $$, fill, h } from "./lib/dom.js";
import { activityStatus } from "./lib/format.js";
import { NOT_LINKED, followLink } from "./lib/link.js";
import * as dashboard from "./screens/dashboard.js";
import * as whatsapp from "./screens/whatsapp.js";
import * as history from "./screens/history.js";
import * as carriers from "./screens/carriers.js";
import * as settings from "./screens/settings.js";

const screens = { dashboard, whatsapp, history, carriers, settings };

/** Shared with the screens: what the app knows and how to move around. */
const ctx = {
  info: null,
  activity: null,
  whatsapp: null,
  // Linked or not, and whether the phone unlinked the relay (lib/link.js).
  link: NOT_LINKED,
  current: null,
  show,
  setActivity,
};

function setActivity(activity) {
  if (!activity) return;
  ctx.activity = activity;
  renderStatus();
}

function show(name) {
  if (!screens[name]) return;
  if (ctx.current && ctx.current !== name) screens[ctx.current].leave?.(ctx);
  for (const section of $$(".screen")) section.hidden = section.id !== `screen-${name}`;
  for (const button of $$(".nav")) button.classList.toggle("active", button.dataset.screen === name);
  ctx.current = name;
  screens[name].enter?.(ctx);
}

function renderStatus() {
  const status = activityStatus(ctx.activity);
  const pill = $("#status-pill");
  pill.textContent = status.text;
  pill.className = `pill ${status.tone}`;
}

/** Until the engine runs, say why the screens are empty: starting, or the error that stopped it. */
async function watchEngine() {
  const banner = $("#engine-banner");
  for (;;) {
    let phase = "starting";
    try {
      const overview = await call("overview");
      phase = overview.phase;
      if (phase === "failed" && overview.error) {
        fill(
          banner,
          h("strong", {}, "Le relais n'a pas pu démarrer. "),
          overview.error.message,
          h("div", { class: "banner-hint" }, "Corrigez la configuration (config.toml dans le dossier de données, ou les variables d'environnement), puis relancez l'application."),
        );
        banner.className = "banner bad";
        banner.hidden = false;
        const pill = $("#status-pill");
        pill.textContent = "Relais arrêté";
        pill.className = "pill bad";
        return;
      }
    } catch {
      // The command itself failed: keep the banner and try again.
    }
    if (phase === "running") {
      banner.hidden = true;
      try {
        setActivity((await call("overview")).activity);
      } catch {
        // The next `relay:activity` event brings it anyway.
      }
      screens[ctx.current]?.enter?.(ctx);
      return;
    }
    fill(banner, "Démarrage du relais… (synchronisation des transporteurs, ouverture de la base)");
    banner.className = "banner";
    banner.hidden = false;
    await new Promise((resolve) => setTimeout(resolve, 700));
  }
}

async function boot() {
  try {
    ctx.info = await call("app_info");
  } catch {
    ctx.info = { version: "", channel: null };
  }
  $("#version").textContent = ctx.info.version ? `version ${ctx.info.version}` : "";
  $("#brand-channel").textContent = ctx.info.channel ? `canal ${ctx.info.channel}` : "configuration invalide";
  for (const button of $$(".nav")) button.addEventListener("click", () => show(button.dataset.screen));
  for (const screen of Object.values(screens)) screen.init?.(ctx);

  await on("relay:activity", (activity) => {
    setActivity(activity);
    screens[ctx.current]?.onActivity?.(ctx, activity);
  });
  await on("relay:whatsapp", (state) => {
    ctx.whatsapp = state;
    ctx.link = followLink(ctx.link, state);
    screens.whatsapp.onWhatsApp?.(ctx, state);
  });

  // With WhatsApp Web the first thing staff may need is the QR code.
  show(ctx.info.channel === "whatsapp-web" ? "whatsapp" : "dashboard");
  renderStatus();
  watchEngine();
}

boot();
