import { InvalidOptionError } from './errors.js';

/** Throws {@link InvalidOptionError} unless `value` is an integer in [min, max]. */
export function checkInteger(option: string, value: unknown, min: number, max: number): void {
  if (typeof value !== 'number' || !Number.isInteger(value) || value < min || value > max) {
    throw new InvalidOptionError(option, `an integer in [${min}, ${max}]`, value);
  }
}
