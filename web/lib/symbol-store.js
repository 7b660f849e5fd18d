// The dashboard's subscription, remembered in localStorage across reloads.

const KEY = "ticker.symbols";
export const DEFAULT_SYMBOLS = ["AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "TSLA"];

/** The remembered symbols, or the defaults when nothing (or nothing readable) is stored. */
export function loadSymbols() {
  try {
    const stored = JSON.parse(localStorage.getItem(KEY));
    if (Array.isArray(stored) && stored.every((s) => typeof s === "string")) return stored;
  } catch {
    // Unreadable storage or corrupt JSON: fall back to the defaults.
  }
  return [...DEFAULT_SYMBOLS];
}

export function saveSymbols(symbols) {
  localStorage.setItem(KEY, JSON.stringify(symbols));
}
