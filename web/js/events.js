// A minimal event emitter for client state changes.

export class Emitter {
  #handlers = new Map();

  /** Subscribes; returns a function that unsubscribes. */
  on(type, handler) {
    if (!this.#handlers.has(type)) this.#handlers.set(type, new Set());
    this.#handlers.get(type).add(handler);
    return () => this.#handlers.get(type)?.delete(handler);
  }

  emit(type, detail) {
    for (const handler of [...(this.#handlers.get(type) || [])]) {
      try {
        handler(detail);
      } catch (error) {
        // One broken view must not stop the others from updating.
        reportError(error);
      }
    }
  }
}
