// How the chart shows its symbol: bar interval ("1s" over 5 minutes, "1m" over the day) and
// style ("line" or "candles"), chosen with the toggle buttons and remembered across reloads.

const KEY = "ticker.chart";
const CHOICES = { interval: ["1s", "1m"], style: ["line", "candles"] };

export function loadView() {
  const view = { interval: "1s", style: "line" };
  try {
    const stored = JSON.parse(localStorage.getItem(KEY)) ?? {};
    for (const [key, allowed] of Object.entries(CHOICES)) {
      if (allowed.includes(stored[key])) view[key] = stored[key];
    }
  } catch {
    // Unreadable storage or corrupt JSON: the defaults.
  }
  return view;
}

/**
 * Wires the buttons with `data-interval` / `data-style` under `root` to `view`; calls
 * `onChange(view)` after every change.
 */
export function bindViewToggles(root, view, onChange) {
  const buttons = [...root.querySelectorAll("button[data-interval], button[data-style]")];
  const mark = () => {
    for (const button of buttons) {
      const [key, value] = Object.entries(button.dataset)[0];
      button.setAttribute("aria-pressed", String(view[key] === value));
    }
  };
  for (const button of buttons) {
    button.addEventListener("click", () => {
      const [key, value] = Object.entries(button.dataset)[0];
      if (view[key] === value) return;
      view[key] = value;
      localStorage.setItem(KEY, JSON.stringify(view));
      mark();
      onChange(view);
    });
  }
  mark();
}
