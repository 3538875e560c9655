// Typed errors. Every error ftune raises is one of these; each message ends with a
// "hint:" line telling the user what to do (STYLE.md rule 10).

export type ErrorKind = 'FormatError' | 'ShapeError' | 'ConfigError' | 'NativeError' | 'IoError' | 'NumericalError';

export class FtuneError extends Error {
  readonly hint: string;
  constructor(name: ErrorKind, message: string, hint: string) {
    super(`${message}\nhint: ${hint}`);
    this.name = name;
    this.hint = hint;
  }
}

/** A file's bytes or JSON do not follow its format (names the file and the field). */
export class FormatError extends FtuneError {
  constructor(message: string, hint: string) {
    super('FormatError', message, hint);
  }
}

/** Tensor shapes or dtypes do not fit an op. */
export class ShapeError extends FtuneError {
  constructor(message: string, hint = 'check the shapes passed to this op; this is usually a bug in the caller') {
    super('ShapeError', message, hint);
  }
}

/** A configuration value (flag, config file field, environment variable) is invalid. */
export class ConfigError extends FtuneError {
  constructor(message: string, hint: string) {
    super('ConfigError', message, hint);
  }
}

/** A native kernel returned a non-zero status. */
export class NativeError extends FtuneError {
  readonly status: number;
  constructor(kernel: string, status: number, detail: string) {
    super('NativeError', `native kernel ${kernel} failed with status ${status}: ${detail}`,
      'this is a bug in ftune or a corrupt input; rerun with FTUNE_ISA=scalar to compare and report it');
    this.status = status;
  }
}

/** A file could not be read or written. */
export class IoError extends FtuneError {
  constructor(message: string, hint: string) {
    super('IoError', message, hint);
  }
}

/**
 * Training produced a non-finite number (NaN or infinity) in the loss, a gradient or a
 * weight. `step` is the optimizer step that failed (1-based, as logged); `tensor` names
 * the first parameter holding a non-finite value ("loss" when only the loss is).
 */
export class NumericalError extends FtuneError {
  readonly step: number;
  readonly tensor: string;
  constructor(message: string, step: number, tensor: string, hint: string) {
    super('NumericalError', message, hint);
    this.step = step;
    this.tensor = tensor;
  }
}
