// The access token of a server with auth on (`auth.tokens`, `auth.hmac_secret`). Browsers cannot
// set headers on a WebSocket, so it travels as `?token=` on `/ws` and `/api/*`. The page takes
// it from its own address (`/?token=…`) or from the token field, keeps it in sessionStorage (this
// tab only, gone when it closes), and takes it out of the address bar so that it is not shared
// along with the link or kept in the history.

const KEY = "ticker.token";

/** This tab's token, after moving a `?token=` from the page's address into storage; "" if none. */
export function accessToken() {
  const page = new URL(location.href);
  const given = page.searchParams.get("token");
  if (given !== null) {
    saveToken(given.trim());
    page.searchParams.delete("token");
    history.replaceState(history.state, "", page);
  }
  try {
    return sessionStorage.getItem(KEY) ?? "";
  } catch {
    // Storage disabled: only a token in the address works, for this page view.
    return given?.trim() ?? "";
  }
}

/** Remembers `token` for this tab; an empty one forgets it. */
export function saveToken(token) {
  try {
    if (token) sessionStorage.setItem(KEY, token);
    else sessionStorage.removeItem(KEY);
  } catch {
    // Storage disabled: nothing to remember it in.
  }
}

/** `url` (absolute, or relative to the page) with the token as `?token=`, when there is one. */
export function withToken(url) {
  const token = accessToken();
  if (!token) return url;
  const full = new URL(url, location.href);
  full.searchParams.set("token", token);
  return full.href;
}
