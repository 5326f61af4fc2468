// The only module that talks to the Rust side: commands answer a value or throw a
// `{code, message}` error; events carry the relay's live state.

const tauri = window.__TAURI__;

/** Any thrown value as `{code, message}`, the shape every command error has. */
export function asUiError(err) {
  if (err && typeof err === "object" && typeof err.message === "string" && "code" in err) {
    // `fields`: the refused inputs of a form, each shown next to its field.
    return Array.isArray(err.fields)
      ? { code: String(err.code), message: err.message, fields: err.fields }
      : { code: String(err.code), message: err.message };
  }
  return { code: "internal", message: String(err) };
}

export async function call(command, args = {}) {
  try {
    return await tauri.core.invoke(command, args);
  } catch (err) {
    throw asUiError(err);
  }
}

/** Calls `handler(payload)` on each `event`; returns a function that stops listening. */
export async function on(event, handler) {
  return tauri.event.listen(event, (e) => handler(e.payload));
}
