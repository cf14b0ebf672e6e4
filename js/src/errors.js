/** Errors of the layerwise package, mirroring the Python runtime's (runtime/errors.py). */

/** Base class: every error the package raises on purpose. */
export class LayerwiseError extends Error {
  constructor(message, options) {
    super(message, options);
    this.name = new.target.name;
  }
}

/** The bundle is missing, malformed, changed after export, or reaches outside its folder. */
export class BundleError extends LayerwiseError {}

/** A caller's argument is invalid (texts, layers, pool, combine, lengths). */
export class InputError extends LayerwiseError {}

/** A graph produced NaN or Inf; nothing was returned. */
export class NonFiniteOutputError extends LayerwiseError {}
