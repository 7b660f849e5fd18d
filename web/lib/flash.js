// A short background flash on a cell whose value just changed.

const FLASH_MS = 700;

/** (Re)starts the flash on `element`; `color` may name a CSS variable, e.g. "var(--flash-up)". */
export function flash(element, color) {
  for (const running of element.getAnimations()) running.cancel();
  element.animate([{ backgroundColor: color }, { backgroundColor: "transparent" }], {
    duration: FLASH_MS,
    easing: "ease-out",
  });
}
