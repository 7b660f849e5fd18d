// A minimal event emitter that works the same in browsers and in Node (no EventTarget subclassing,
// no dependency): `on` returns the function that removes the listener.

export class Emitter {
  /** @type {Map<string, Set<Function>>} */
  #listeners = new Map();

  on(event, listener) {
    let set = this.#listeners.get(event);
    if (!set) this.#listeners.set(event, (set = new Set()));
    set.add(listener);
    return () => set.delete(listener);
  }

  off(event, listener) {
    this.#listeners.get(event)?.delete(listener);
  }

  once(event, listener) {
    const off = this.on(event, (...args) => {
      off();
      listener(...args);
    });
    return off;
  }

  /** Calls every listener; one that throws is reported and does not stop the others. */
  emit(event, ...args) {
    for (const listener of [...(this.#listeners.get(event) ?? [])]) {
      try {
        listener(...args);
      } catch (error) {
        setTimeout(() => {
          throw error;
        });
      }
    }
  }
}
